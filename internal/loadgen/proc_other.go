//go:build !linux

package loadgen

import (
	"errors"
	"syscall"
)

func childAttr() *syscall.SysProcAttr { return nil }

type memStatus struct{ HWM, RSS, Anon, File int64 }

// procStatus needs /proc: peak RSS is measured on Linux only.
func procStatus(pid int) (memStatus, error) {
	return memStatus{}, errors.New("peak RSS (VmHWM) is read from /proc, on Linux only")
}

func fsType(dir string) string { return "" }

func hostInfo() (cpu string, mem int64, kernel string) { return "", 0, "" }

func procCPU(pid int) float64 { return 0 }

func selfCPU() float64 { return 0 }

func loadAvg() float64 { return -1 }

func procWriteBytes(pid int) int64 { return 0 }

func procRunqWait(pid int) float64 { return 0 }
