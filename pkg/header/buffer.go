package header

// room returns b[:n] for a builder. It panics when len(b) < n, where b[:n] alone would
// silently write into b's spare capacity, memory the caller did not hand over.
func room(b []byte, n int) []byte { return b[:n:len(b)] }
