// Package bench holds shardstack's end-to-end benchmarks: handshakes through the in-memory
// pair, the server side alone driven by a raw generator, and the pieces (SYN table, accept
// ring, header parse and checksum). Figures are recorded in README.md; compare runs with
// benchstat.
package bench
