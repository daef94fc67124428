package queue

// pad fills the rest of a cache line after one 8-byte field so that the next
// field starts a full line later, whatever the alignment of the struct.
type pad [cacheLineSize - 8]byte

// linePad is a whole cache line, used to keep read-mostly fields away from
// the first hot counter.
type linePad [cacheLineSize]byte
