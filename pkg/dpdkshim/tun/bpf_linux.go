package tun

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// progLoadAttr is the head of union bpf_attr for BPF_PROG_LOAD, as far as this package
// uses it; the kernel zero-fills the fields beyond the size it is given.
type progLoadAttr struct {
	progType    uint32
	insnCnt     uint32
	insns       uint64
	license     uint64
	logLevel    uint32
	logSize     uint32
	logBuf      uint64
	kernVersion uint32
	progFlags   uint32
	progName    [16]byte
}

// testRunAttr is union bpf_attr for BPF_PROG_TEST_RUN.
type testRunAttr struct {
	progFD      uint32
	retval      uint32
	dataSizeIn  uint32
	dataSizeOut uint32
	dataIn      uint64
	dataOut     uint64
	repeat      uint32
	duration    uint32
	ctxSizeIn   uint32
	ctxSizeOut  uint32
	ctxIn       uint64
	ctxOut      uint64
	flags       uint32
	cpu         uint32
	batchSize   uint32
	_           uint32
}

var license = []byte("MIT\x00")

// loadProgram loads prog as a BPF_PROG_TYPE_SOCKET_FILTER program and returns its file
// descriptor. When the kernel refuses it, the error carries the verifier's log.
func loadProgram(prog []insn, name string) (int, error) {
	attr := progLoadAttr{
		progType: unix.BPF_PROG_TYPE_SOCKET_FILTER,
		insnCnt:  uint32(len(prog)),
		insns:    uint64(uintptr(unsafe.Pointer(&prog[0]))),
		license:  uint64(uintptr(unsafe.Pointer(&license[0]))),
	}
	copy(attr.progName[:15], name)
	fd, err := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(prog)
	if err == nil {
		return fd, nil
	}
	if err == unix.EPERM || err == unix.ENOSYS {
		return -1, err
	}
	// Again with the verifier's log, to say why.
	log := make([]byte, 1<<16)
	attr.logLevel, attr.logSize, attr.logBuf = 1, uint32(len(log)), uint64(uintptr(unsafe.Pointer(&log[0])))
	fd, err2 := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(prog)
	runtime.KeepAlive(log)
	if err2 == nil {
		return fd, nil
	}
	msg := string(log)
	if i := strings.IndexByte(msg, 0); i >= 0 {
		msg = msg[:i]
	}
	return -1, fmt.Errorf("%w: %s", err, strings.TrimSpace(msg))
}

// testRun runs a socket-filter program once over data with BPF_PROG_TEST_RUN and returns
// its result. The kernel treats data as an Ethernet frame and starts the program at the
// network header after it, as a TUN device starts it at its packet's first byte.
func testRun(fd int, data []byte) (uint32, error) {
	if len(data) == 0 {
		return 0, errors.New("tun: test run of an empty frame")
	}
	attr := testRunAttr{
		progFD:     uint32(fd),
		dataSizeIn: uint32(len(data)),
		dataIn:     uint64(uintptr(unsafe.Pointer(&data[0]))),
		repeat:     1,
	}
	_, err := bpf(unix.BPF_PROG_TEST_RUN, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(data)
	if err != nil {
		return 0, err
	}
	return attr.retval, nil
}

func bpf(cmd int, attr unsafe.Pointer, size uintptr) (int, error) {
	r, _, e := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// attachSteering loads the steering program for n queues and attaches it to the device
// through one of its queues' descriptors (TUNSETSTEERINGEBPF); the device keeps its own
// reference, so the program's descriptor is closed again.
func attachSteering(fd int, seed uint32, n int) error {
	prog, err := steerProgram(seed, n)
	if err != nil {
		return err
	}
	pfd, err := loadProgram(prog, "ss_tun_steer")
	if err != nil {
		return fmt.Errorf("loading the steering program (bpf BPF_PROG_LOAD): %w", err)
	}
	defer unix.Close(pfd)
	if err := setSteering(fd, pfd); err != nil {
		return fmt.Errorf("TUNSETSTEERINGEBPF: %w", err)
	}
	return nil
}

// setSteering attaches program pfd to the device of queue descriptor fd (-1 detaches).
func setSteering(fd, pfd int) error {
	v := int32(pfd)
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETSTEERINGEBPF, uintptr(unsafe.Pointer(&v)))
	if e != 0 {
		return e
	}
	return nil
}
