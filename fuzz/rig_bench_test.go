package fuzz

import "testing"

// BenchmarkRig is what each FuzzReceivePath input pays before its first frame: a fresh
// server stack with a listener.
func BenchmarkRig(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r := newRig(b, byte(i))
		r.srv.Close()
	}
}
