// Package pcap owns the classic libpcap capture file format: a Writer that records packets
// with nanosecond timestamps, readable by tcpdump, tshark and Wireshark, and a Reader for
// files in either timestamp resolution and either byte order. It does not handle pcapng.
package pcap
