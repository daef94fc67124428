// Package tcp is shardstack's TCP: the listener (per-shard SYN tables, requests, one accept
// ring), the connector (active open with shard-aware ephemeral ports), the connection state
// machine, TIME-WAIT, and the net.Listener / net.Conn faces that applications use.
//
// The engine is split the way the stack is. An Engine is shared by the whole stack: settings,
// secrets, the listener registry. A Shard is owned by one stack shard goroutine: its flow
// tables, pools and timers are touched by nothing else, so the packet path takes no lock.
// Applications talk to a connection through lock-free rings (the receive and send byte
// buffers) and a per-shard list of connections with pending work; the shard does the rest.
//
// The behaviour is Linux's, as written down in shared/spec/connection-establishment.md; names
// follow Linux (request, checkReq, createOpenreqChild, acceptQueue, synTable) so the seeds map
// onto the code. This package does not parse links or IP: the stack hands it TCP segments
// with their addresses, and it hands back segments for the stack to send (Env).
package tcp
