package bench

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procSample is what the process costs at one instant.
type procSample struct {
	at        time.Time
	cpu       time.Duration // user + system CPU time since the process began
	rss       int64         // VmRSS, bytes
	heapInuse uint64        // runtime.MemStats.HeapInuse, bytes
	goroutine int
}

// sampleProc reads the process's CPU time and memory. getrusage gives the
// same utime+stime as /proc/self/stat but in microseconds rather than
// clock ticks, which matters over short windows.
func sampleProc() (procSample, error) {
	s := procSample{at: time.Now(), goroutine: runtime.NumGoroutine()}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return s, fmt.Errorf("getrusage: %w", err)
	}
	s.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	rss, err := vmRSS()
	if err != nil {
		return s, err
	}
	s.rss = rss
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.heapInuse = ms.HeapInuse
	return s, nil
}

// vmRSS is the resident set size from /proc/self/status.
func vmRSS() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("reading RSS: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			fields := strings.Fields(rest)
			if len(fields) != 2 || fields[1] != "kB" {
				break
			}
			kb, err := strconv.ParseInt(fields[0], 10, 64)
			if err != nil {
				break
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("reading RSS: no VmRSS line in /proc/self/status")
}

// startCPUProfile profiles the process into path until stop is called;
// with no path it does nothing. stop may be called more than once.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			f.Close()
		})
	}, nil
}
