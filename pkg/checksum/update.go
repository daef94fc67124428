package checksum

// Update16 returns the checksum check adjusted for one 16-bit word changing from old to new,
// by RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'). Unlike eqn. 2 it never yields the -0 (0xffff)
// that a full recomputation over data that is not all zero cannot produce (RFC 1624 §3).
func Update16(check, old, new uint16) uint16 {
	s := uint32(^check) + uint32(^old) + uint32(new)
	return ^Fold(s)
}

// Update32 returns the checksum check adjusted for one aligned 32-bit field (an IPv4
// address, a sequence number) changing from old to new, applying RFC 1624 eqn. 3 to both
// of its 16-bit words at once.
func Update32(check uint16, old, new uint32) uint16 {
	s := uint32(^check) +
		uint32(^uint16(old>>16)) + uint32(^uint16(old)) +
		uint32(uint16(new>>16)) + uint32(uint16(new))
	return ^Fold(s)
}
