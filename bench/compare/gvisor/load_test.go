package main

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A short run on each link kind and close mode completes every connection, reads the
// right reply and fills in every figure.
func TestRun_CompletesConnections(t *testing.T) {
	for _, link := range []string{linkChannel, linkPipe} {
		for _, rst := range []bool{false, true} {
			t.Run(link+"/"+closeName(rst), func(t *testing.T) {
				res, err := run(config{Duration: 60 * time.Second, Conns: 300, Concurrency: 8, RST: rst, Link: link})
				require.NoError(t, err)
				require.Zero(t, res.Failures, "errors: %v", res.Errors)
				require.Zero(t, res.Stuck)
				require.EqualValues(t, 300, res.Conns)
				require.Equal(t, closeName(rst), res.Close)
				require.Equal(t, link, res.Link)
				require.Positive(t, res.ConnsPerSec)
				require.Positive(t, res.P50us)
				require.GreaterOrEqual(t, res.P99us, res.P50us)
				require.Positive(t, res.AllocsPerConn)
				require.Positive(t, res.BytesPerConn)
			})
		}
	}
}

func TestRun_RejectsBadConfig(t *testing.T) {
	_, err := run(config{Duration: time.Second, Concurrency: 1, Link: "carrier-pigeon"})
	require.ErrorContains(t, err, "unknown --link")
	_, err = run(config{Concurrency: 1, Link: linkChannel})
	require.ErrorContains(t, err, "--duration")
	_, err = run(config{Duration: time.Second, Link: linkChannel})
	require.ErrorContains(t, err, "--concurrency")
}

// The command prints one JSON object with the figures.
func TestRunMain_JSON(t *testing.T) {
	var out bytes.Buffer
	err := runMain([]string{"--duration", "60s", "--conns", "100", "--concurrency", "4", "--json"}, &out)
	require.NoError(t, err)
	var res result
	require.NoError(t, json.Unmarshal(out.Bytes(), &res))
	require.EqualValues(t, 100, res.Conns)
	require.Equal(t, "gvisor", res.Stack)
	require.Equal(t, "fin", res.Close)
	require.Equal(t, linkChannel, res.Link)
}

func TestLatency_Quantiles(t *testing.T) {
	var h latency
	require.Zero(t, h.quantile(0.5))
	for v := int64(1); v <= 1000; v++ {
		h.record(v * 1000) // 1 us .. 1 ms
	}
	p50, p99 := h.quantile(0.5), h.quantile(0.99)
	require.InDelta(t, 500_000, p50, 500_000/16.0)
	require.InDelta(t, 990_000, p99, 990_000/16.0)
	require.GreaterOrEqual(t, p50, int64(500_000)) // never below the true quantile
	require.Equal(t, int64(1_000_000), h.quantile(1))
	h.record(-5)
	require.Equal(t, int64(0), h.quantile(0))
}

// Every value falls in a bucket whose upper edge is at or above it and within 1/16 of it.
func TestLatency_BucketEdges(t *testing.T) {
	for _, v := range []int64{0, 1, 15, 16, 17, 31, 32, 33, 1000, 123456789, 1 << 40, 1<<62 + 12345, 1<<63 - 1} {
		i := bucket(v)
		require.GreaterOrEqual(t, upper(i), v, "v=%d", v)
		require.LessOrEqual(t, float64(upper(i)-v), float64(v)/16+1, "v=%d", v)
		if i > 0 {
			require.Less(t, upper(i-1), v, "v=%d", v)
		}
	}
}

func TestLatency_Merge(t *testing.T) {
	var a, b latency
	a.record(10)
	b.record(1_000_000)
	a.merge(&b)
	require.Equal(t, int64(10), a.quantile(0.5))
	require.Equal(t, int64(1_000_000), a.quantile(1))
}
