package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// userHZ is the unit of utime and stime in /proc/<pid>/stat (USER_HZ, 100
// on every Linux architecture Go supports).
const userHZ = 100

// runProcStat prints, for each LABEL=PID argument, the process's peak RSS
// (VmHWM), current RSS and CPU seconds (utime+stime).
func runProcStat(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: procstat LABEL=PID...")
	}
	for _, a := range args {
		label, pidStr, ok := strings.Cut(a, "=")
		if !ok {
			return fmt.Errorf("want LABEL=PID, got %q", a)
		}
		pid, err := strconv.Atoi(pidStr)
		if err != nil {
			return fmt.Errorf("%s: bad pid %q", label, pidStr)
		}
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		for _, line := range strings.Split(string(status), "\n") {
			for _, field := range []string{"VmHWM", "VmRSS"} {
				if v, ok := strings.CutPrefix(line, field+":"); ok {
					kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
					result(fmt.Sprintf("proc_%s_%s_mb", label, strings.ToLower(field)), float64(kb)/1024)
				}
			}
		}
		utime, stime, err := procCPU(pid)
		if err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		result(fmt.Sprintf("proc_%s_cpu_s", label), utime+stime)
		result(fmt.Sprintf("proc_%s_utime_s", label), utime)
		result(fmt.Sprintf("proc_%s_stime_s", label), stime)
	}
	return nil
}

// procCPU returns the user and system CPU seconds of pid.
func procCPU(pid int) (utime, stime float64, err error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// Fields after the command name, which may hold spaces and ')'.
	s := string(stat)
	rest := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	// rest[0] is field 3 (state); utime is field 14, stime 15.
	if len(rest) < 13 {
		return 0, 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	u, _ := strconv.ParseFloat(rest[11], 64)
	st, _ := strconv.ParseFloat(rest[12], 64)
	return u / userHZ, st / userHZ, nil
}
