package stack

import "github.com/shardstack/shardstack/pkg/header"

// sendNS sends a neighbour solicitation for target: to its solicited-node group, or to mac
// when unicast (a PROBE). IPv6 input and output come next; until then nothing is sent.
func (sh *shard) sendNS(target [16]byte, mac header.MAC, unicast bool) {}
