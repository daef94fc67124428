// Package netns is the real-link test harness: it makes throwaway Linux network
// namespaces (named ss-<pid>-<seq>-<label>), joins them with veth pairs, addresses
// them inside 198.18.0.0/15, gives them permanent neighbours, takes their links down
// and up, runs Go code and commands inside them, reads their TCP sockets with ss and
// their interface counters, sets their sysctls and drops packets with nftables. Each
// namespace is held open from New to its cleanup and entered through that descriptor,
// never by name, so another process deleting the name does not pull it from under a
// test.
//
// It owns only the namespaces it creates and the links, addresses, sysctls and nftables
// tables inside them; it never configures the host's own namespace, and t.Cleanup (or, for
// a process that was killed, the next process's sweep) deletes what it made. On other
// systems Require skips the test.
package netns
