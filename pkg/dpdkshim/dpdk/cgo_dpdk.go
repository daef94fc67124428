//go:build dpdk

package dpdk

/*
#cgo pkg-config: libdpdk
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_dev.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

// shs_buf is what Go needs to know of an mbuf to view its buffer: one per received or
// allocated mbuf, in arrays the bursts fill.
struct shs_buf {
	uintptr_t m;
	unsigned char *buf;
	uint16_t buf_len, data_off, data_len, flags;
};

enum { SHS_RX_CSUM_GOOD = 1, SHS_RX_CSUM_BAD = 2, SHS_RX_MULTISEG = 4 };

// shs_tx is what Go tells of a packet to transmit.
struct shs_tx {
	uintptr_t m;
	uint16_t data_off, data_len;
	uint16_t l2_len, l3_len;
	uint8_t kind; // txKind
};

static int shs_errno(void) { return rte_errno; }

static uint16_t shs_rx_burst(uint16_t port, uint16_t q, struct rte_mbuf **ms, struct shs_buf *out, uint16_t n) {
	uint16_t k = rte_eth_rx_burst(port, q, ms, n);
	for (uint16_t i = 0; i < k; i++) {
		struct rte_mbuf *m = ms[i];
		uint64_t l4 = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
		out[i].m = (uintptr_t)m;
		out[i].buf = m->buf_addr;
		out[i].buf_len = m->buf_len;
		out[i].data_off = m->data_off;
		out[i].data_len = m->data_len;
		out[i].flags = (l4 == RTE_MBUF_F_RX_L4_CKSUM_GOOD ? SHS_RX_CSUM_GOOD : 0) |
			(l4 == RTE_MBUF_F_RX_L4_CKSUM_BAD ? SHS_RX_CSUM_BAD : 0) |
			(m->nb_segs != 1 ? SHS_RX_MULTISEG : 0);
	}
	return k;
}

// shs_alloc allocates up to n mbufs, as many as the pool has (alloc_bulk is all or
// nothing: it halves its ask until it succeeds), and describes them.
static unsigned shs_alloc(struct rte_mempool *mp, struct rte_mbuf **ms, struct shs_buf *out, unsigned n) {
	while (n > 0 && rte_pktmbuf_alloc_bulk(mp, ms, n) != 0)
		n /= 2;
	for (unsigned i = 0; i < n; i++) {
		struct rte_mbuf *m = ms[i];
		out[i].m = (uintptr_t)m;
		out[i].buf = m->buf_addr;
		out[i].buf_len = m->buf_len;
		out[i].data_off = m->data_off;
		out[i].data_len = 0;
		out[i].flags = 0;
	}
	return n;
}

static const uint64_t shs_tx_flags[5] = {
	0,
	RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_TCP_CKSUM,
	RTE_MBUF_F_TX_IPV6 | RTE_MBUF_F_TX_TCP_CKSUM,
	RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_UDP_CKSUM,
	RTE_MBUF_F_TX_IPV6 | RTE_MBUF_F_TX_UDP_CKSUM,
};

static uint16_t shs_tx_burst(uint16_t port, uint16_t q, struct rte_mbuf **ms, const struct shs_tx *in, uint16_t n) {
	for (uint16_t i = 0; i < n; i++) {
		struct rte_mbuf *m = (struct rte_mbuf *)in[i].m;
		m->data_off = in[i].data_off;
		m->data_len = in[i].data_len;
		m->pkt_len = in[i].data_len;
		m->ol_flags = shs_tx_flags[in[i].kind < 5 ? in[i].kind : 0];
		m->l2_len = in[i].l2_len;
		m->l3_len = in[i].l3_len;
		ms[i] = m;
	}
	return rte_eth_tx_burst(port, q, ms, n);
}

static void shs_free(uintptr_t *ms, unsigned n) { rte_pktmbuf_free_bulk((struct rte_mbuf **)ms, n); }
static void shs_free1(uintptr_t m) { rte_pktmbuf_free((struct rte_mbuf *)m); }

struct shs_info {
	uint16_t max_rx_queues, max_tx_queues, reta_size, mtu;
	uint8_t hash_key_size;
	uint64_t rss_offloads, rx_offload_capa, tx_offload_capa;
	int socket;
	char driver[64];
	unsigned char mac[6];
};

static int shs_info(uint16_t port, struct shs_info *out) {
	struct rte_eth_dev_info info;
	struct rte_ether_addr mac;
	int r = rte_eth_dev_info_get(port, &info);
	if (r != 0)
		return r;
	memset(out, 0, sizeof *out);
	out->max_rx_queues = info.max_rx_queues;
	out->max_tx_queues = info.max_tx_queues;
	out->reta_size = info.reta_size;
	out->hash_key_size = info.hash_key_size;
	out->rss_offloads = info.flow_type_rss_offloads;
	out->rx_offload_capa = info.rx_offload_capa;
	out->tx_offload_capa = info.tx_offload_capa;
	out->socket = rte_eth_dev_socket_id(port);
	if (info.driver_name)
		strncpy(out->driver, info.driver_name, sizeof out->driver - 1);
	if (rte_eth_dev_get_mtu(port, &out->mtu) != 0)
		out->mtu = 1500;
	if (rte_eth_macaddr_get(port, &mac) == 0)
		memcpy(out->mac, mac.addr_bytes, 6);
	return 0;
}

// shs_configure configures the port with nq queue pairs; key (malloc'd, kept for the
// port's life: the PMD may read it again when it starts) is the RSS key, NULL for none.
static int shs_configure(uint16_t port, uint16_t nq, unsigned char *key, uint8_t keylen, uint64_t rss_hf,
		uint64_t rxoff, uint64_t txoff) {
	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof conf);
	if (key != NULL) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_key = key;
		conf.rx_adv_conf.rss_conf.rss_key_len = keylen;
		conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
	}
	conf.rxmode.offloads = rxoff;
	conf.txmode.offloads = txoff;
	return rte_eth_dev_configure(port, nq, nq, &conf);
}

static int shs_queues(uint16_t port, uint16_t nq, uint16_t rxd, uint16_t txd, int socket, struct rte_mempool *mp,
		uint64_t rxoff, uint64_t txoff) {
	struct rte_eth_dev_info info;
	int r = rte_eth_dev_info_get(port, &info);
	if (r != 0)
		return r;
	for (uint16_t q = 0; q < nq; q++) {
		struct rte_eth_rxconf rxc = info.default_rxconf;
		struct rte_eth_txconf txc = info.default_txconf;
		rxc.offloads = rxoff;
		txc.offloads = txoff;
		if ((r = rte_eth_rx_queue_setup(port, q, rxd, socket, &rxc, mp)) != 0)
			return r;
		if ((r = rte_eth_tx_queue_setup(port, q, txd, socket, &txc)) != 0)
			return r;
	}
	return 0;
}

static int shs_adjust_desc(uint16_t port, uint16_t *rxd, uint16_t *txd) {
	return rte_eth_dev_adjust_nb_rx_tx_desc(port, rxd, txd);
}

static int shs_reta(uint16_t port, uint16_t size, uint16_t *out) {
	struct rte_eth_rss_reta_entry64 conf[RTE_ETH_RSS_RETA_SIZE_512 / RTE_ETH_RETA_GROUP_SIZE];
	if (size == 0 || size > RTE_ETH_RSS_RETA_SIZE_512)
		return -EINVAL;
	memset(conf, 0, sizeof conf);
	for (unsigned i = 0; i < (size + RTE_ETH_RETA_GROUP_SIZE - 1) / RTE_ETH_RETA_GROUP_SIZE; i++)
		conf[i].mask = ~0ULL;
	int r = rte_eth_dev_rss_reta_query(port, conf, size);
	if (r != 0)
		return r;
	for (unsigned i = 0; i < size; i++)
		out[i] = conf[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE];
	return 0;
}

// shs_rss_hf is what the port is asked to hash, of what it can: TCP's 4-tuple and the
// addresses, for IPv4 and IPv6.
static uint64_t shs_rss_hf(uint64_t capa) {
	return capa & (RTE_ETH_RSS_NONFRAG_IPV4_TCP | RTE_ETH_RSS_NONFRAG_IPV6_TCP | RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_IPV6);
}

static int shs_has(uint64_t set, uint64_t bits) { return (set & bits) == bits; }

static uint32_t shs_lcore_id(void) { return rte_lcore_id(); }

static struct rte_mempool *shs_pool_create(const char *name, unsigned n, int socket) {
	return rte_pktmbuf_pool_create(name, n, n >= 1024 ? 256 : 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, socket);
}

static int shs_port_by_name(const char *name, uint16_t *port) { return rte_eth_dev_get_port_by_name(name, port); }

static int shs_next_port(int from) {
	uint16_t p = rte_eth_find_next_owned_by(from < 0 ? 0 : (uint16_t)from, RTE_ETH_DEV_NO_OWNER);
	return p >= RTE_MAX_ETHPORTS ? -1 : p;
}

struct shs_stats {
	uint64_t ipackets, opackets, ibytes, obytes, imissed, ierrors, oerrors, rx_nombuf;
};

static int shs_stats(uint16_t port, struct shs_stats *out) {
	struct rte_eth_stats s;
	int r = rte_eth_stats_get(port, &s);
	if (r != 0)
		return r;
	out->ipackets = s.ipackets; out->opackets = s.opackets;
	out->ibytes = s.ibytes; out->obytes = s.obytes;
	out->imissed = s.imissed; out->ierrors = s.ierrors; out->oerrors = s.oerrors;
	out->rx_nombuf = s.rx_nombuf;
	return 0;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/header"
)

// maxBurst bounds one burst: the C arrays of a queue have this many entries.
const maxBurst = 256

// freeBatch is the most mbufs one rte_pktmbuf_free_bulk call takes (FreeBatch gathers 64).
const freeBatch = 64

// eal is the process's one EAL.
var eal struct {
	mu      sync.Mutex
	done    bool
	args    []string // the arguments other than --vdev it was initialised with
	held    map[uint16]bool
	pools   int // mempools made, for unique names
	lcoreID atomic.Uint32
}

// rteErr describes a DPDK error: a negative errno return value, else (ret 0, for the
// functions that return -1 or NULL) rte_errno.
func rteErr(what string, ret C.int) error {
	code := -int(ret)
	if code <= 0 {
		code = int(C.shs_errno())
	}
	return fmt.Errorf("dpdk: %s: %s (%d)", what, C.GoString(C.rte_strerror(C.int(code))), code)
}

// initEAL runs rte_eal_init on this (locked) thread. The EAL binds the thread that
// initialises it to the main lcore's CPU; the thread gets its CPU mask back after, so that
// the threads Go starts from it later are not confined to one CPU.
func initEAL(args []string) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var cpus unix.CPUSet
	haveCPUs := unix.SchedGetaffinity(0, &cpus) == nil
	argv := make([]*C.char, 0, len(args)+1)
	argv = append(argv, C.CString("shardstack"))
	for _, a := range args {
		argv = append(argv, C.CString(a))
	}
	cargv := (**C.char)(C.malloc(C.size_t(len(argv)) * C.size_t(unsafe.Sizeof(argv[0]))))
	cv := unsafe.Slice(cargv, len(argv))
	copy(cv, argv)
	ret := C.rte_eal_init(C.int(len(argv)), cargv)
	if haveCPUs {
		_ = unix.SchedSetaffinity(0, &cpus)
	}
	// The EAL keeps pointers into argv (its parsed options): argv is never freed.
	if ret < 0 {
		return rteErr("rte_eal_init "+strings.Join(args, " "), 0)
	}
	return nil
}

// cstr runs f with s as a C string.
func cstr[T any](s string, f func(*C.char) T) T {
	c := C.CString(s)
	defer C.free(unsafe.Pointer(c))
	return f(c)
}

// Port is one rte_ethdev as a dpdkshim.Port.
type Port struct {
	id                 uint16
	name               string
	driver             string
	mac                header.MAC
	mtu                int
	queues             []*queue
	mp                 *C.struct_rte_mempool
	rssKey             *C.uchar
	steering           dpdkshim.Steering
	offloads           dpdkshim.Offloads
	vdev               string // the vdev Open probed (removed again by Close), or ""
	scratch            []freeScratch
	freeCalls, freeOne atomic.Uint64
	closed             bool
}

// freeScratch is a C array that one Release at a time fills with mbuf addresses.
type freeScratch struct {
	busy atomic.Bool
	arr  []C.uintptr_t
	_    [40]byte
}

// queue is one rx/tx queue pair and what its shard's goroutine alone touches.
type queue struct {
	pt    *Port
	id    uint16
	bare  *dpdkshim.Pool // descriptors for received mbufs
	pool  *dpdkshim.Pool // the stack's transmit packets: mbufs of the port's mempool
	rxm   **C.struct_rte_mbuf
	rxi   []C.struct_shs_buf
	rxiP  *C.struct_shs_buf
	txm   **C.struct_rte_mbuf
	txi   []C.struct_shs_tx
	txiP  *C.struct_shs_tx
	txp   []*dpdkshim.Packet // the packets txi describes (copies of foreign ones)
	drop  []C.uintptr_t      // received mbufs refused, freed at the end of the burst
	dropP *C.uintptr_t
	alm   **C.struct_rte_mbuf
	ali   []C.struct_shs_buf
	aliP  *C.struct_shs_buf
	c     queueCounters
}

func cArray[T any](n int) (*T, []T) {
	var z T
	p := (*T)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(z))))
	return p, unsafe.Slice(p, n)
}

// Open brings up the port cfg names (initialising the EAL, or hot-plugging cfg's --vdev
// devices into the running one) with cfg.Queues queue pairs, and starts it.
func Open(cfg Config) (*Port, error) {
	if cfg.Queues <= 0 {
		cfg.Queues = 1
	}
	if cfg.Queues > maxQueues {
		return nil, fmt.Errorf("dpdk: %d queues: at most %d", cfg.Queues, maxQueues)
	}
	if cfg.RxDesc <= 0 {
		cfg.RxDesc = 1024
	}
	if cfg.TxDesc <= 0 {
		cfg.TxDesc = 1024
	}
	rest, vdevs, err := splitVdevs(cfg.EAL)
	if err != nil {
		return nil, fmt.Errorf("dpdk: %w", err)
	}
	eal.mu.Lock()
	defer eal.mu.Unlock()
	if !eal.done {
		if err := initEAL(cfg.EAL); err != nil {
			return nil, err
		}
		eal.done, eal.args, eal.held = true, rest, map[uint16]bool{}
	} else if !slices.Equal(rest, eal.args) {
		return nil, fmt.Errorf("dpdk: the process's EAL runs with %q; a second port may differ only in its --vdev devices, not %q",
			strings.Join(eal.args, " "), strings.Join(rest, " "))
	}
	var probed string
	for _, v := range vdevs {
		name := vdevName(v)
		var id C.uint16_t
		if cstr(name, func(c *C.char) C.int { return C.shs_port_by_name(c, &id) }) == 0 {
			continue // probed at rte_eal_init, or still there
		}
		_, args, _ := strings.Cut(v, ",")
		ret := cstr(name, func(n *C.char) C.int {
			return cstr(args, func(a *C.char) C.int { return C.rte_eal_hotplug_add(busVdev, n, a) })
		})
		if ret != 0 {
			return nil, rteErr("probing --vdev "+v, ret)
		}
		if probed == "" {
			probed = name
		}
	}
	name := cfg.Port
	if name == "" && len(vdevs) > 0 {
		name = vdevName(vdevs[0])
	}
	var id uint16
	if name != "" {
		var cid C.uint16_t
		if cstr(name, func(c *C.char) C.int { return C.shs_port_by_name(c, &cid) }) != 0 {
			return nil, fmt.Errorf("dpdk: no port %q (have %s)", name, strings.Join(portNames(), ", "))
		}
		id = uint16(cid)
	} else {
		found := false
		for p := C.shs_next_port(0); p >= 0; p = C.shs_next_port(p + 1) {
			if !eal.held[uint16(p)] {
				id, found = uint16(p), true
				break
			}
		}
		if !found {
			return nil, errors.New("dpdk: no free port: give the EAL a device (--vdev=net_af_packet0,iface=IFACE or a PCI device bound to a DPDK driver)")
		}
	}
	if eal.held[id] {
		return nil, fmt.Errorf("dpdk: port %d (%s) is already open", id, name)
	}
	if probed == "" && name != "" && slices.ContainsFunc(vdevs, func(v string) bool { return vdevName(v) == name }) {
		probed = name // probed by rte_eal_init: removed by Close all the same, so it can be probed again
	}
	pt, err := setup(id, cfg)
	if err != nil {
		if probed != "" {
			cstr(probed, func(c *C.char) C.int { return C.rte_eal_hotplug_remove(busVdev, c) })
		}
		return nil, err
	}
	pt.vdev = probed
	eal.held[id] = true
	return pt, nil
}

// busVdev is the name of the virtual device bus, for hot-plugging.
var busVdev = C.CString("vdev")

// maxQueues bounds the queue pairs of a port.
const maxQueues = 128

func portNames() []string {
	var out []string
	for p := C.shs_next_port(0); p >= 0; p = C.shs_next_port(p + 1) {
		var buf [C.RTE_ETH_NAME_MAX_LEN]C.char
		if C.rte_eth_dev_get_name_by_port(C.uint16_t(p), &buf[0]) == 0 {
			out = append(out, C.GoString(&buf[0]))
		}
	}
	if len(out) == 0 {
		return []string{"none"}
	}
	return out
}

// setup configures and starts port id.
func setup(id uint16, cfg Config) (*Port, error) {
	var info C.struct_shs_info
	if r := C.shs_info(C.uint16_t(id), &info); r != 0 {
		return nil, rteErr("rte_eth_dev_info_get", r)
	}
	pt := &Port{id: id, driver: C.GoString(&info.driver[0]), mtu: int(info.mtu)}
	var nb [C.RTE_ETH_NAME_MAX_LEN]C.char
	if C.rte_eth_dev_get_name_by_port(C.uint16_t(id), &nb[0]) == 0 {
		pt.name = C.GoString(&nb[0])
	}
	for i := range pt.mac {
		pt.mac[i] = byte(info.mac[i])
	}
	nq := cfg.Queues
	if nq > int(info.max_rx_queues) || nq > int(info.max_tx_queues) {
		hint := ""
		if strings.HasPrefix(pt.driver, "net_af_packet") {
			hint = fmt.Sprintf("; give its --vdev qpairs=%d", nq)
		}
		return nil, fmt.Errorf("dpdk: port %s (%s) has at most %d receive and %d transmit queues, and %d shards want one each%s",
			pt.name, pt.driver, info.max_rx_queues, info.max_tx_queues, nq, hint)
	}
	// Data room: RTE_MBUF_DEFAULT_BUF_SIZE less the headroom, for a frame and its FCS.
	room := int(C.RTE_MBUF_DEFAULT_BUF_SIZE) - int(C.RTE_PKTMBUF_HEADROOM)
	pt.mtu = min(max(pt.mtu, 576), room-header.EthernetLen-4)

	var rxoff, txoff C.uint64_t
	if C.shs_has(info.rx_offload_capa, C.RTE_ETH_RX_OFFLOAD_TCP_CKSUM|C.RTE_ETH_RX_OFFLOAD_IPV4_CKSUM) != 0 {
		rxoff |= C.RTE_ETH_RX_OFFLOAD_TCP_CKSUM | C.RTE_ETH_RX_OFFLOAD_IPV4_CKSUM
		pt.offloads.RxCsum = true
	}
	if C.shs_has(info.tx_offload_capa, C.RTE_ETH_TX_OFFLOAD_TCP_CKSUM|C.RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) != 0 {
		txoff |= C.RTE_ETH_TX_OFFLOAD_TCP_CKSUM
		pt.offloads.TxCsum = true
	}
	hf := C.shs_rss_hf(info.rss_offloads)
	rss := nq > 1 && hf != 0
	var keyLen int
	if rss {
		keyLen = int(info.hash_key_size)
		if keyLen == 0 {
			keyLen = 40
		}
		key := SymmetricKey(keyLen)
		pt.rssKey = (*C.uchar)(C.malloc(C.size_t(keyLen)))
		copy(unsafe.Slice((*byte)(unsafe.Pointer(pt.rssKey)), keyLen), key)
	}
	fail := func(err error) (*Port, error) {
		pt.release()
		return nil, err
	}
	if r := C.shs_configure(C.uint16_t(id), C.uint16_t(nq), pt.rssKey, C.uint8_t(keyLen), hf, rxoff, txoff); r != 0 {
		return fail(rteErr(fmt.Sprintf("rte_eth_dev_configure %s with %d queue pairs", pt.name, nq), r))
	}
	rxd, txd := C.uint16_t(min(cfg.RxDesc, 32768)), C.uint16_t(min(cfg.TxDesc, 32768))
	if r := C.shs_adjust_desc(C.uint16_t(id), &rxd, &txd); r != 0 {
		return fail(rteErr("rte_eth_dev_adjust_nb_rx_tx_desc", r))
	}
	mbufs := cfg.Mbufs
	if mbufs <= 0 {
		mbufs = max(8191, nq*(int(rxd)+int(txd)+2*maxBurst+4096)-1)
	}
	socket := info.socket
	if socket < 0 {
		socket = C.SOCKET_ID_ANY
	}
	eal.pools++
	pname := fmt.Sprintf("shs%d_%d", id, eal.pools)
	pt.mp = cstr(pname, func(c *C.char) *C.struct_rte_mempool { return C.shs_pool_create(c, C.uint(mbufs), socket) })
	if pt.mp == nil {
		return fail(rteErr(fmt.Sprintf("rte_pktmbuf_pool_create of %d mbufs (give the EAL more memory, -m, or the port fewer, mbufs=)", mbufs), 0))
	}
	if r := C.shs_queues(C.uint16_t(id), C.uint16_t(nq), rxd, txd, socket, pt.mp, rxoff, txoff); r != 0 {
		return fail(rteErr("setting up the queues", r))
	}
	if r := C.rte_eth_dev_start(C.uint16_t(id)); r != 0 {
		return fail(rteErr("rte_eth_dev_start "+pt.name, r))
	}
	if rss && info.reta_size > 0 {
		reta := make([]uint16, int(info.reta_size))
		if C.shs_reta(C.uint16_t(id), info.reta_size, (*C.uint16_t)(unsafe.Pointer(&reta[0]))) == 0 {
			pt.steering = &RSS{
				Key: SymmetricKey(keyLen), Reta: reta,
				TCP4: C.shs_has(hf, C.RTE_ETH_RSS_NONFRAG_IPV4_TCP) != 0, TCP6: C.shs_has(hf, C.RTE_ETH_RSS_NONFRAG_IPV6_TCP) != 0,
				IP4: C.shs_has(hf, C.RTE_ETH_RSS_IPV4) != 0, IP6: C.shs_has(hf, C.RTE_ETH_RSS_IPV6) != 0,
			}
		}
	}
	pt.scratch = make([]freeScratch, 2*nq+4)
	for i := range pt.scratch {
		_, pt.scratch[i].arr = cArray[C.uintptr_t](freeBatch)
	}
	for q := 0; q < nq; q++ {
		pt.queues = append(pt.queues, newQueue(pt, uint16(q), int(rxd)))
	}
	return pt, nil
}

func newQueue(pt *Port, id uint16, rxd int) *queue {
	q := &queue{pt: pt, id: id}
	q.rxm, _ = cArray[*C.struct_rte_mbuf](maxBurst)
	q.rxiP, q.rxi = cArray[C.struct_shs_buf](maxBurst)
	q.txm, _ = cArray[*C.struct_rte_mbuf](maxBurst)
	q.txiP, q.txi = cArray[C.struct_shs_tx](maxBurst)
	q.dropP, q.drop = cArray[C.uintptr_t](maxBurst)
	q.alm, _ = cArray[*C.struct_rte_mbuf](maxBurst)
	q.aliP, q.ali = cArray[C.struct_shs_buf](maxBurst)
	q.txp = make([]*dpdkshim.Packet, maxBurst)
	// Received mbufs the stack holds at once: a ring's worth and more.
	q.bare = dpdkshim.NewPool(dpdkshim.PoolConfig{Bare: true, Size: 1024, Max: max(4*rxd, 16384)})
	q.pool = dpdkshim.NewPool(dpdkshim.PoolConfig{Bare: true, Source: q, Size: 1024, Max: 16384,
		Headroom: int(C.RTE_PKTMBUF_HEADROOM)})
	return q
}

// release frees what setup made (the port is stopped or was never started).
func (pt *Port) release() {
	if pt.mp != nil {
		C.rte_mempool_free(pt.mp)
		pt.mp = nil
	}
	if pt.rssKey != nil {
		C.free(unsafe.Pointer(pt.rssKey))
		pt.rssKey = nil
	}
}

// Name implements dpdkshim.Port.
func (pt *Port) Name() string { return pt.name }

// Driver is the PMD's name (net_af_packet, net_ixgbe, ...).
func (pt *Port) Driver() string { return pt.driver }

// MAC implements dpdkshim.Port.
func (pt *Port) MAC() header.MAC { return pt.mac }

// MTU implements dpdkshim.Port.
func (pt *Port) MTU() int { return pt.mtu }

// NumQueues implements dpdkshim.Port.
func (pt *Port) NumQueues() int { return len(pt.queues) }

// Steering implements dpdkshim.Port: RSS with the symmetric key where the PMD hashes, nil
// where it does not (net_af_packet).
func (pt *Port) Steering() dpdkshim.Steering { return pt.steering }

// Offloads implements dpdkshim.Port.
func (pt *Port) Offloads() dpdkshim.Offloads { return pt.offloads }

// RxWait implements dpdkshim.Port: a poll-mode driver is polled.
func (pt *Port) RxWait(int) dpdkshim.Wait { return dpdkshim.NoWait }

// Pool implements dpdkshim.Port: queue q's transmit packets are mbufs of the port's mempool.
func (pt *Port) Pool(q int) *dpdkshim.Pool { return pt.queues[q].pool }

// BindThread implements dpdkshim.ThreadBinder: the calling (locked) thread becomes a
// DPDK thread with an lcore id of its own (rte_thread_register), unless it is one already.
func (pt *Port) BindThread(q int) (func(), error) {
	if C.shs_lcore_id() != C.LCORE_ID_ANY {
		pt.queues[q].c.lcore.Store(uint32(C.shs_lcore_id()))
		return func() {}, nil
	}
	if C.rte_thread_register() != 0 {
		return nil, rteErr("rte_thread_register", 0)
	}
	pt.queues[q].c.lcore.Store(uint32(C.shs_lcore_id()))
	return func() { C.rte_thread_unregister() }, nil
}

// RxBurst implements dpdkshim.Port: one rte_eth_rx_burst, and each mbuf becomes a packet
// that views its buffer.
func (pt *Port) RxBurst(qi int, pkts []*dpdkshim.Packet) int {
	q := pt.queues[qi]
	n := min(len(pkts), maxBurst)
	if n == 0 {
		return 0
	}
	k := int(C.shs_rx_burst(C.uint16_t(pt.id), C.uint16_t(q.id), q.rxm, q.rxiP, C.uint16_t(n)))
	q.c.rxBursts.Add(1)
	if k == 0 {
		q.c.rxEmpty.Add(1)
		return 0
	}
	out, drops, bytes := 0, 0, 0
	var multi, nobuf uint64
	for i := 0; i < k; i++ {
		b := &q.rxi[i]
		if b.flags&C.SHS_RX_MULTISEG != 0 {
			// A frame chained over several mbufs: longer than the MTU the port announced.
			q.drop[drops] = b.m
			drops++
			multi++
			continue
		}
		p := q.bare.Get()
		if p == nil {
			q.drop[drops] = b.m
			drops++
			nobuf++
			continue
		}
		p.Attach(unsafe.Slice((*byte)(b.buf), int(b.buf_len)), int(b.data_off), int(b.data_len), pt, uint64(b.m))
		p.Queue = q.id
		if b.flags&C.SHS_RX_CSUM_GOOD != 0 && pt.offloads.RxCsum {
			p.Flags = dpdkshim.CsumVerified
		}
		bytes += int(b.data_len)
		pkts[out] = p
		out++
	}
	if drops > 0 {
		C.shs_free(q.dropP, C.uint(drops))
		q.c.rxMultiSeg.Add(multi)
		q.c.rxNoDesc.Add(nobuf)
	}
	q.c.rxPackets.Add(uint64(out))
	q.c.rxBytes.Add(uint64(bytes))
	return out
}

// TxBurst implements dpdkshim.Port: one rte_eth_tx_burst of the packets' mbufs; a packet
// that is not one of the port's mbufs is copied into one first.
func (pt *Port) TxBurst(qi int, pkts []*dpdkshim.Packet) int {
	q := pt.queues[qi]
	n := min(len(pkts), maxBurst)
	copies := 0
	for i := 0; i < n; i++ {
		p := pkts[i]
		mp := p
		if p.Owner() != dpdkshim.Owner(pt) {
			mp = q.pool.Get()
			if mp == nil {
				q.c.txNoMbuf.Add(1)
				n = i
				break
			}
			if p.Len() > mp.Tailroom() {
				// Longer than an mbuf's data room: it can never be sent. Taken and
				// dropped when it leads the burst; else the burst stops before it.
				mp.Free()
				if i == 0 {
					q.c.txTooLong.Add(1)
					p.Free()
					return 1
				}
				n = i
				break
			}
			mp.Append(p.Len())
			copy(mp.Data(), p.Data())
			if start, field, ok := p.TxCsumOffsets(); ok {
				mp.SetTxCsum(start, field)
			}
			copies++
		}
		q.txp[i] = mp
		t := &q.txi[i]
		t.m = C.uintptr_t(mp.Ref)
		t.data_off = C.uint16_t(mp.Headroom())
		t.data_len = C.uint16_t(mp.Len())
		t.kind, t.l2_len, t.l3_len = 0, 0, 0
		if start, field, ok := mp.TxCsumOffsets(); ok && pt.offloads.TxCsum {
			kind, l2, l3 := txCsum(mp.Data(), start, field)
			t.kind, t.l2_len, t.l3_len = C.uint8_t(kind), C.uint16_t(l2), C.uint16_t(l3)
		}
	}
	if n == 0 {
		return 0
	}
	k := int(C.shs_tx_burst(C.uint16_t(pt.id), C.uint16_t(q.id), q.txm, q.txiP, C.uint16_t(n)))
	q.c.txBursts.Add(1)
	bytes := 0
	for i := 0; i < n; i++ {
		mp := q.txp[i]
		q.txp[i] = nil
		if i < k {
			bytes += mp.Len()
			mp.Disown() // the PMD frees the mbuf once sent
			mp.Free()
			if pkts[i] != mp {
				pkts[i].Free()
			}
		} else if pkts[i] != mp {
			mp.Free() // a copy the PMD did not take: the caller keeps the original
		}
	}
	q.c.txPackets.Add(uint64(k))
	q.c.txBytes.Add(uint64(bytes))
	if copies > 0 {
		q.c.txCopies.Add(uint64(copies))
	}
	if k < n {
		q.c.txFull.Add(uint64(n - k))
	}
	return k
}

// Fill implements dpdkshim.Source for queue q's transmit pool: one rte_pktmbuf_alloc_bulk.
func (q *queue) Fill(pkts []*dpdkshim.Packet) int {
	n := min(len(pkts), maxBurst)
	k := int(C.shs_alloc(q.pt.mp, q.alm, q.aliP, C.uint(n)))
	q.c.allocCalls.Add(1)
	for i := 0; i < k; i++ {
		b := &q.ali[i]
		pkts[i].Attach(unsafe.Slice((*byte)(b.buf), int(b.buf_len)), int(b.data_off), 0, q.pt, uint64(b.m))
	}
	if k < n {
		q.c.txNoMbuf.Add(uint64(n - k))
	}
	return k
}

// Release implements dpdkshim.Owner, from any goroutine: the mbufs go back to the mempool
// with rte_pktmbuf_free_bulk, 64 at a time, through a scratch array no other Release
// uses meanwhile (or one by one when every scratch array is in use).
func (pt *Port) Release(pkts []*dpdkshim.Packet) {
	var s *freeScratch
	for i := range pt.scratch {
		if pt.scratch[i].busy.CompareAndSwap(false, true) {
			s = &pt.scratch[i]
			break
		}
	}
	if s == nil {
		for _, p := range pkts {
			C.shs_free1(C.uintptr_t(p.Ref))
		}
		pt.freeOne.Add(uint64(len(pkts)))
		return
	}
	for len(pkts) > 0 {
		n := min(len(pkts), freeBatch)
		for i, p := range pkts[:n] {
			s.arr[i] = C.uintptr_t(p.Ref)
		}
		C.shs_free(&s.arr[0], C.uint(n))
		pt.freeCalls.Add(1)
		pkts = pkts[n:]
	}
	s.busy.Store(false)
}

// Close stops the port, removes the virtual device Open probed and frees the mempool. Call
// it once the stack on the port has closed: no packet of the port may be held after.
func (pt *Port) Close() error {
	eal.mu.Lock()
	defer eal.mu.Unlock()
	if pt.closed {
		return nil
	}
	pt.closed = true
	var err error
	if r := C.rte_eth_dev_stop(C.uint16_t(pt.id)); r != 0 {
		err = rteErr("rte_eth_dev_stop "+pt.name, r)
	}
	for _, q := range pt.queues {
		q.pool.Drain()
	}
	if pt.vdev != "" {
		if r := cstr(pt.vdev, func(c *C.char) C.int { return C.rte_eal_hotplug_remove(busVdev, c) }); r != 0 && err == nil {
			err = rteErr("removing "+pt.vdev, r)
		}
	} else if r := C.rte_eth_dev_close(C.uint16_t(pt.id)); r != 0 && err == nil {
		err = rteErr("rte_eth_dev_close "+pt.name, r)
	}
	pt.release()
	delete(eal.held, pt.id)
	return err
}

// Stats returns each queue's figures.
func (pt *Port) Stats() []QueueStats {
	out := make([]QueueStats, len(pt.queues))
	for i, q := range pt.queues {
		out[i] = q.c.snapshot()
	}
	return out
}

// FreeCalls returns how many rte_pktmbuf_free_bulk calls Release made, and how many mbufs
// it freed one by one (every scratch array in use).
func (pt *Port) FreeCalls() (bulk, single uint64) { return pt.freeCalls.Load(), pt.freeOne.Load() }

// PortStats are the ethdev's own counters (rte_eth_stats_get).
type PortStats struct {
	IPackets, OPackets, IBytes, OBytes uint64
	IMissed, IErrors, OErrors, NoMbuf  uint64
}

// PortStats returns the ethdev's counters.
func (pt *Port) PortStats() (PortStats, error) {
	var s C.struct_shs_stats
	if r := C.shs_stats(C.uint16_t(pt.id), &s); r != 0 {
		return PortStats{}, rteErr("rte_eth_stats_get", r)
	}
	return PortStats{uint64(s.ipackets), uint64(s.opackets), uint64(s.ibytes), uint64(s.obytes),
		uint64(s.imissed), uint64(s.ierrors), uint64(s.oerrors), uint64(s.rx_nombuf)}, nil
}

var (
	_ dpdkshim.Port         = (*Port)(nil)
	_ dpdkshim.Owner        = (*Port)(nil)
	_ dpdkshim.ThreadBinder = (*Port)(nil)
	_ dpdkshim.Source       = (*queue)(nil)
)
