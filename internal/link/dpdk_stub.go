//go:build !dpdk

package link

import "fmt"

// The DPDK backend needs cgo and libdpdk: without the build tag it only says so.
func init() {
	RegisterRaw("dpdk", func(sp *Spec, p Params) (*Link, error) {
		return nil, fmt.Errorf("link dpdk: this shardstack was built without DPDK; build it with `go build -tags dpdk` where libdpdk-dev and pkg-config are installed (see README.md, \"Running on DPDK\")")
	})
}
