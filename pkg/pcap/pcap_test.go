package pcap

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const goldenPath = "../header/testdata/linux-tcp.pcap"

type record struct {
	ts   int64
	data []byte
}

func readAll(t *testing.T, r io.Reader) (*Reader, []record) {
	t.Helper()
	rd, err := NewReader(r)
	require.NoError(t, err)
	var out []record
	for {
		ts, data, err := rd.Next()
		if err == io.EOF {
			return rd, out
		}
		require.NoError(t, err)
		out = append(out, record{ts, bytes.Clone(data)})
	}
}

func TestWriter_RoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, 64, LinkTypeEthernet)
	require.NoError(t, err)
	in := []record{
		{1_700_000_000_123_456_789, []byte{1, 2, 3}},
		{0, nil},
		{999_999_999, bytes.Repeat([]byte{0xab}, 64)},
		{-1, []byte{9}}, // one nanosecond before the epoch wraps the unsigned seconds
	}
	for _, p := range in {
		require.NoError(t, w.WritePacket(p.ts, p.data))
	}
	// A packet longer than the snap length is cut, and the record keeps the original length.
	long := bytes.Repeat([]byte{0xcd}, 100)
	require.NoError(t, w.WritePacket(5, long))

	raw := buf.Bytes()
	require.Equal(t, uint32(magicNanos), binary.LittleEndian.Uint32(raw))
	rd, got := readAll(t, bytes.NewReader(raw))
	require.Equal(t, uint32(LinkTypeEthernet), rd.LinkType())
	require.Equal(t, uint32(64), rd.SnapLen())
	require.Len(t, got, 5)
	for i := 0; i < 3; i++ {
		require.Equal(t, in[i].ts, got[i].ts)
		require.Equal(t, len(in[i].data), len(got[i].data))
		require.True(t, bytes.Equal(in[i].data, got[i].data))
	}
	require.Equal(t, int64(0xffffffff)*1e9+999_999_999, got[3].ts)
	require.Equal(t, long[:64], got[4].data)
	lastRecord := raw[len(raw)-64-recordHeaderLen:]
	require.Equal(t, uint32(64), binary.LittleEndian.Uint32(lastRecord[8:]))
	require.Equal(t, uint32(100), binary.LittleEndian.Uint32(lastRecord[12:]))
}

func TestReader_BothMagicsBothOrders(t *testing.T) {
	for _, c := range []struct {
		name  string
		order binary.ByteOrder
		magic uint32
		frac  uint32
		want  int64
	}{
		{"micro little", binary.LittleEndian, magicMicros, 250_000, 7_250_000_000},
		{"micro big", binary.BigEndian, magicMicros, 250_000, 7_250_000_000},
		{"nano little", binary.LittleEndian, magicNanos, 250_000, 7_000_250_000},
		{"nano big", binary.BigEndian, magicNanos, 250_000, 7_000_250_000},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := make([]byte, fileHeaderLen+recordHeaderLen+2)
			c.order.PutUint32(f[0:], c.magic)
			c.order.PutUint16(f[4:], 2)
			c.order.PutUint16(f[6:], 4)
			c.order.PutUint32(f[16:], 1500)
			c.order.PutUint32(f[20:], 101)
			c.order.PutUint32(f[24:], 7)
			c.order.PutUint32(f[28:], c.frac)
			c.order.PutUint32(f[32:], 2)
			c.order.PutUint32(f[36:], 2)
			f[40], f[41] = 0xbe, 0xef
			rd, got := readAll(t, bytes.NewReader(f))
			require.Equal(t, uint32(101), rd.LinkType())
			require.Equal(t, uint32(1500), rd.SnapLen())
			require.Len(t, got, 1)
			require.Equal(t, c.want, got[0].ts)
			require.Equal(t, []byte{0xbe, 0xef}, got[0].data)
		})
	}
}

func TestReader_Malformed(t *testing.T) {
	var good bytes.Buffer
	w, err := NewWriter(&good, 1500, LinkTypeEthernet)
	require.NoError(t, err)
	require.NoError(t, w.WritePacket(1, []byte{1, 2, 3, 4}))
	g := good.Bytes()

	_, err = NewReader(bytes.NewReader(nil))
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	_, err = NewReader(bytes.NewReader(g[:10]))
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)

	bad := bytes.Clone(g)
	bad[0] = 0
	_, err = NewReader(bytes.NewReader(bad))
	require.ErrorIs(t, err, ErrBadMagic)

	for _, cut := range []int{fileHeaderLen + 5, len(g) - 1} {
		rd, err := NewReader(bytes.NewReader(g[:cut]))
		require.NoError(t, err)
		_, _, err = rd.Next()
		require.ErrorIs(t, err, io.ErrUnexpectedEOF, "cut at %d", cut)
	}

	huge := bytes.Clone(g)
	binary.LittleEndian.PutUint32(huge[fileHeaderLen+8:], MaxSnapLen+1)
	rd, err := NewReader(bytes.NewReader(huge))
	require.NoError(t, err)
	_, _, err = rd.Next()
	require.ErrorIs(t, err, ErrRecordTooLarge)
}

func TestNewWriter_BadSnapLen(t *testing.T) {
	for _, n := range []int{0, -1, MaxSnapLen + 1} {
		_, err := NewWriter(io.Discard, n, LinkTypeEthernet)
		require.ErrorIs(t, err, ErrSnapLen)
	}
}

func TestWritePacket_NoAllocs(t *testing.T) {
	w, err := NewWriter(io.Discard, MaxSnapLen, LinkTypeEthernet)
	require.NoError(t, err)
	pkt := make([]byte, 1514)
	allocs := testing.AllocsPerRun(100, func() {
		_ = w.WritePacket(123, pkt)
	})
	require.Zero(t, allocs)
}

func TestReader_GoldenCapture(t *testing.T) {
	f, err := os.Open(goldenPath)
	require.NoError(t, err)
	defer f.Close()
	rd, pkts := readAll(t, f)
	require.Equal(t, uint32(LinkTypeEthernet), rd.LinkType())
	require.Equal(t, uint32(MaxSnapLen), rd.SnapLen()) // tcpdump's default
	require.Len(t, pkts, 46)
	// The first frame is the ARP request (EtherType 0x0806) sent to the broadcast address.
	require.Equal(t, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, pkts[0].data[0:6])
	require.Equal(t, []byte{0x08, 0x06}, pkts[0].data[12:14])
	for i := 1; i < len(pkts); i++ {
		require.LessOrEqual(t, pkts[i-1].ts, pkts[i].ts, "timestamps go forward")
		require.Zero(t, pkts[i].ts%1000, "microsecond file: timestamps are whole microseconds")
	}
}

// TestWriter_TsharkReads runs tshark on a file the Writer produced from the golden frames.
func TestWriter_TsharkReads(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not on PATH; install it (apt-get install tshark) to check Writer output against Wireshark")
	}
	f, err := os.Open(goldenPath)
	require.NoError(t, err)
	defer f.Close()
	_, pkts := readAll(t, f)

	path := filepath.Join(t.TempDir(), "out.pcap")
	out, err := os.Create(path)
	require.NoError(t, err)
	w, err := NewWriter(out, 1500, LinkTypeEthernet)
	require.NoError(t, err)
	for i, p := range pkts {
		require.NoError(t, w.WritePacket(int64(i)*1_000_000_001, p.data))
	}
	require.NoError(t, out.Close())

	cmd := exec.Command(tshark, "-n", "-r", path, "-T", "fields",
		"-e", "frame.time_epoch", "-e", "frame.len", "-e", "eth.type", "-e", "tcp.srcport")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir()) // keep tshark's profile out of the real home
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	require.NoError(t, err, "tshark: %s", stderr.String())
	lines := strings.Split(strings.TrimSpace(string(stdout)), "\n")
	require.Len(t, lines, len(pkts))
	first := strings.Split(lines[0], "\t")
	require.Equal(t, "0x0806", first[2])
	fifth := strings.Split(lines[4], "\t") // the first SYN, to port 8080
	require.True(t, strings.HasPrefix(fifth[0], "4.000000004"), fifth[0])
	require.Equal(t, "0x0800", fifth[2])
	require.Equal(t, "74", fifth[1])
}
