package stack_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/shardstack/shardstack/pkg/dpdkshim"
	"github.com/shardstack/shardstack/pkg/stack"
)

// Serving HTTP on a shardstack listener, and fetching it through a second stack wired to
// the first by the in-memory pair.
func Example() {
	port, peer := dpdkshim.NewPair(dpdkshim.PairConfig{Queues: 2})
	s, err := stack.New(stack.Config{Port: port, Addr: netip.MustParsePrefix("198.18.0.1/24"), Shards: 2})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	l, err := s.Listen(":8080", 4096) // a net.Listener
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello from shardstack\n")
	})}
	go srv.Serve(l)
	defer srv.Close()

	client, err := stack.New(stack.Config{Port: peer, Addr: netip.MustParsePrefix("198.18.0.2/24"), Shards: 2})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return client.Dial(ctx, addr)
		},
	}, Timeout: 10 * time.Second}
	for i := 0; i < 3; i++ {
		resp, err := hc.Get("http://198.18.0.1:8080/")
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Print(string(body))
	}
	// Output:
	// hello from shardstack
	// hello from shardstack
	// hello from shardstack
}
