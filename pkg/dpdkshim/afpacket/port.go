package afpacket

import "github.com/shardstack/shardstack/pkg/dpdkshim"

var (
	_ dpdkshim.Port         = (*Port)(nil)
	_ dpdkshim.QueueLimiter = (*Port)(nil)
)

// Frame layout sizes the configuration needs on every system.
const (
	tpacket3HdrLen = 48 // TPACKET_ALIGN(sizeof(struct tpacket3_hdr))
	sockaddrLLLen  = 20 // sizeof(struct sockaddr_ll)
)
