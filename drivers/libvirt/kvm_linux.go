//go:build linux

package libvirt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// KVM ioctls (linux/kvm.h).
const (
	kvmGetAPIVersion       = 0xAE00
	kvmCreateVM            = 0xAE01
	kvmGetVCPUMmapSize     = 0xAE04
	kvmCreateVCPU          = 0xAE41
	kvmRun                 = 0xAE80
	kvmSetUserMemoryRegion = 0x4020AE46
	kvmGetRegs             = 0x8090AE81
	kvmSetRegs             = 0x4090AE82
	kvmGetSregs            = 0x8138AE83
	kvmSetSregs            = 0x4138AE84

	kvmExitIO            = 2
	kvmExitHLT           = 5
	kvmExitInternalError = 17

	kvmAPIVersion = 12
)

// kvmUserspaceMemoryRegion is struct kvm_userspace_memory_region.
type kvmUserspaceMemoryRegion struct {
	Slot          uint32
	Flags         uint32
	GuestPhysAddr uint64
	MemorySize    uint64
	UserspaceAddr uint64
}

// kvmRegs is struct kvm_regs.
type kvmRegs struct {
	RAX, RBX, RCX, RDX, RSI, RDI, RSP, RBP uint64
	R8, R9, R10, R11, R12, R13, R14, R15   uint64
	RIP, RFLAGS                            uint64
}

// kvmSegment is struct kvm_segment.
type kvmSegment struct {
	Base                         uint64
	Limit                        uint32
	Selector                     uint16
	Type, Present, DPL, DB, S, L uint8
	G, AVL, Unusable, padding    uint8
}

// kvmSregs is struct kvm_sregs (x86).
type kvmSregs struct {
	CS, DS, ES, FS, GS, SS, TR, LDT kvmSegment
	GDT, IDT                        [16]byte // struct kvm_dtable
	CR0, CR2, CR3, CR4, CR8, EFER   uint64
	APICBase                        uint64
	InterruptBitmap                 [4]uint64
}

// probeCode is 16-bit real-mode code: it writes a byte to port 0x3f8, adds
// through memory, writes the result to the port, and halts. A BIOS does the
// same kind of thing first; where nested KVM cannot run real-mode code (the
// lab's machines: "KVM internal error ... emulation failure" in SeaBIOS),
// this fails the same way.
var probeCode = []byte{
	0xba, 0xf8, 0x03, // mov dx, 0x3f8
	0xb0, 'K', // mov al, 'K'
	0xee,                               // out dx, al
	0xc7, 0x06, 0x00, 0x20, 0x29, 0x00, // mov word [0x2000], 41
	0xff, 0x06, 0x00, 0x20, // inc word [0x2000]
	0xa0, 0x00, 0x20, // mov al, [0x2000]
	0xee, // out dx, al
	0xf4, // hlt
}

// kvmProbeTimeout bounds the probe: a vCPU that does not come back is as
// good as one that fails.
const kvmProbeTimeout = 3 * time.Second

// probeKVM runs a few instructions in a throw-away KVM virtual machine and
// returns nil when KVM ran them as it should. Opening /dev/kvm is not enough:
// under nested virtualisation the device can be there and guests still fail.
func probeKVM(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, kvmProbeTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		// The vCPU belongs to the thread that runs it.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		done <- runKVMProbe()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		// The probe goroutine may stay blocked in KVM_RUN; it holds only
		// its own file descriptors and ends with the process.
		return fmt.Errorf("kvm probe: no answer: %w", ctx.Err())
	}
}

func ioctl(fd int, req uintptr, arg uintptr) (uintptr, error) {
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, arg)
	if errno != 0 {
		return r, errno
	}
	return r, nil
}

func runKVMProbe() error {
	kvm, err := openKVM()
	if err != nil {
		return err
	}
	defer unix.Close(kvm)
	vmfd, err := ioctl(kvm, kvmCreateVM, 0)
	if err != nil {
		return fmt.Errorf("KVM_CREATE_VM: %w", err)
	}
	vm := int(vmfd)
	defer unix.Close(vm)
	mem, err := guestMemory(vm)
	if err != nil {
		return err
	}
	defer unix.Munmap(mem)
	return runVCPU(kvm, vm)
}

// openKVM opens /dev/kvm, checking its API version.
func openKVM() (int, error) {
	kvm, err := unix.Open("/dev/kvm", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open /dev/kvm: %w", err)
	}
	if v, err := ioctl(kvm, kvmGetAPIVersion, 0); err != nil || v != kvmAPIVersion {
		unix.Close(kvm)
		return -1, fmt.Errorf("KVM API version %d (want %d): %v", v, kvmAPIVersion, err)
	}
	return kvm, nil
}

// guestMemory maps the guest's memory, the probe's code at 0x1000, into
// the VM; the caller unmaps it once the guest is done.
func guestMemory(vm int) ([]byte, error) {
	const memSize = 0x4000
	mem, err := unix.Mmap(-1, 0, memSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("mmap guest memory: %w", err)
	}
	copy(mem[0x1000:], probeCode)
	region := kvmUserspaceMemoryRegion{MemorySize: memSize, UserspaceAddr: uint64(uintptr(unsafe.Pointer(&mem[0])))}
	if _, err := ioctl(vm, kvmSetUserMemoryRegion, uintptr(unsafe.Pointer(&region))); err != nil {
		unix.Munmap(mem)
		return nil, fmt.Errorf("KVM_SET_USER_MEMORY_REGION: %w", err)
	}
	return mem, nil
}

// runVCPU makes the VM's vCPU and runs the probe on it.
func runVCPU(kvm, vm int) error {
	cpufd, err := ioctl(vm, kvmCreateVCPU, 0)
	if err != nil {
		return fmt.Errorf("KVM_CREATE_VCPU: %w", err)
	}
	cpu := int(cpufd)
	defer unix.Close(cpu)
	runSize, err := ioctl(kvm, kvmGetVCPUMmapSize, 0)
	if err != nil {
		return fmt.Errorf("KVM_GET_VCPU_MMAP_SIZE: %w", err)
	}
	run, err := unix.Mmap(cpu, 0, int(runSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("mmap kvm_run: %w", err)
	}
	defer unix.Munmap(run)
	if err := setEntry(cpu); err != nil {
		return err
	}
	return runGuest(cpu, run)
}

// setEntry points the vCPU at the probe's code: real mode, flat segments,
// RIP at 0x1000.
func setEntry(cpu int) error {
	var sregs kvmSregs
	if _, err := ioctl(cpu, kvmGetSregs, uintptr(unsafe.Pointer(&sregs))); err != nil {
		return fmt.Errorf("KVM_GET_SREGS: %w", err)
	}
	sregs.CS.Base, sregs.CS.Selector = 0, 0
	sregs.DS.Base, sregs.DS.Selector = 0, 0
	if _, err := ioctl(cpu, kvmSetSregs, uintptr(unsafe.Pointer(&sregs))); err != nil {
		return fmt.Errorf("KVM_SET_SREGS: %w", err)
	}
	regs := kvmRegs{RIP: 0x1000, RFLAGS: 0x2}
	if _, err := ioctl(cpu, kvmSetRegs, uintptr(unsafe.Pointer(&regs))); err != nil {
		return fmt.Errorf("KVM_SET_REGS: %w", err)
	}
	return nil
}

// runGuest runs the vCPU until the guest halts, and checks what it wrote
// to its port.
func runGuest(cpu int, run []byte) error {
	// struct kvm_run: exit_reason at 8; for KVM_EXIT_IO: direction at 32,
	// size 33, port 34, count 36, data_offset 40.
	var out []byte
	for range 16 {
		if _, err := ioctl(cpu, kvmRun, 0); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return fmt.Errorf("KVM_RUN: %w", err)
		}
		switch reason := *(*uint32)(unsafe.Pointer(&run[8])); reason {
		case kvmExitIO:
			off := *(*uint64)(unsafe.Pointer(&run[40]))
			if off < uint64(len(run)) {
				out = append(out, run[off])
			}
		case kvmExitHLT:
			if string(out) != "K*" {
				return fmt.Errorf("kvm probe: guest wrote %q, want %q", out, "K*")
			}
			return nil
		case kvmExitInternalError:
			return fmt.Errorf("kvm probe: KVM internal error (suberror %d)", *(*uint32)(unsafe.Pointer(&run[32])))
		default:
			return fmt.Errorf("kvm probe: unexpected exit reason %d", reason)
		}
	}
	return errors.New("kvm probe: guest did not halt")
}

// kvmUsable says whether /dev/kvm is there at all, without probing.
func kvmUsable() bool {
	_, err := os.Stat("/dev/kvm")
	return err == nil
}
