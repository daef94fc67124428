package netns

import (
	"encoding/json"
	"fmt"
	"testing"
)

// LinkStats is an interface's counters as its namespace's kernel keeps them (ip -s
// link's stats64): what the device received and transmitted, and what it dropped.
type LinkStats struct {
	RxPackets, RxBytes, RxErrors, RxDropped uint64
	TxPackets, TxBytes, TxErrors, TxDropped uint64
}

// LinkStats returns dev's counters (ip -s -j link show dev DEV); it fails the test if
// dev does not exist.
func (ns *NS) LinkStats(t testing.TB, dev string) LinkStats {
	t.Helper()
	s, err := parseLinkStats(ns.ip(t, "-s", "-j", "link", "show", "dev", dev))
	if err != nil {
		t.Fatalf("netns: counters of %s in %s: %v", dev, ns.name, err)
	}
	return s
}

// parseLinkStats reads the stats64 of the one link in ip -s -j link show output.
func parseLinkStats(out string) (LinkStats, error) {
	type dir struct {
		Packets, Bytes, Errors, Dropped *uint64
	}
	var links []struct {
		Stats64 *struct{ Rx, Tx dir } `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		return LinkStats{}, err
	}
	if len(links) != 1 || links[0].Stats64 == nil {
		return LinkStats{}, fmt.Errorf("want one link with stats64, got %q", out)
	}
	st := links[0].Stats64
	for _, p := range []*uint64{st.Rx.Packets, st.Rx.Bytes, st.Rx.Errors, st.Rx.Dropped,
		st.Tx.Packets, st.Tx.Bytes, st.Tx.Errors, st.Tx.Dropped} {
		if p == nil {
			return LinkStats{}, fmt.Errorf("stats64 lacks a counter: %q", out)
		}
	}
	return LinkStats{
		RxPackets: *st.Rx.Packets, RxBytes: *st.Rx.Bytes, RxErrors: *st.Rx.Errors, RxDropped: *st.Rx.Dropped,
		TxPackets: *st.Tx.Packets, TxBytes: *st.Tx.Bytes, TxErrors: *st.Tx.Errors, TxDropped: *st.Tx.Dropped,
	}, nil
}
