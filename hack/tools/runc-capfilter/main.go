// Command runc-capfilter is an OCI runtime for dockerd that runs runc with
// every capability the machine cannot grant taken out of the container's
// process, and changes nothing else.
//
// Why: `docker run --privileged` (kind runs every node container that way,
// and every `docker exec` into one) asks runc for all capabilities. Where the
// bounding set of the machine's processes lacks one (CAP_SYS_RESOURCE on some
// CI sandboxes), runc fails with "unable to apply caps: operation not
// permitted" and no privileged container can start. Dropping only the
// capabilities that cannot be had keeps the rest of privileged mode (all
// devices, writable cgroup and /sys mounts, no masked paths) as kind expects.
//
// hack/docker-up.sh registers it as dockerd's default runtime only when it
// starts dockerd itself on such a machine; on a host whose bounding set is
// complete it is never used. It edits the two files runc reads capabilities
// from: the bundle's config.json (create, run) and the --process file (exec).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// realRuntimeEnv names the runc binary to run; default: runc from PATH.
const realRuntimeEnv = "RUNC_CAPFILTER_RUNTIME"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "runc-capfilter: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	bounding, err := boundingSet()
	if err != nil {
		return err
	}
	if file := specFile(args); file != "" {
		if err := filterFile(file, bounding); err != nil {
			return err
		}
	}
	runtime := os.Getenv(realRuntimeEnv)
	if runtime == "" {
		if runtime, err = exec.LookPath("runc"); err != nil {
			return fmt.Errorf("find runc (set %s): %w", realRuntimeEnv, err)
		}
	}
	return syscall.Exec(runtime, append([]string{runtime}, args...), os.Environ())
}

// specFile returns the file runc will read the container process from for
// this command line, "" for commands that start no process.
func specFile(args []string) string {
	cmd, rest := subcommand(args)
	switch cmd {
	case "create", "run":
		bundle := flagValue(rest, "bundle", "b")
		if bundle == "" {
			bundle = "." // runc's default: the current directory
		}
		return bundle + "/config.json"
	case "exec":
		return flagValue(rest, "process", "p")
	}
	return ""
}

// runcBoolFlags are runc's global flags that take no value (runc 1.1).
var runcBoolFlags = map[string]bool{"debug": true, "systemd-cgroup": true, "help": true, "h": true, "version": true, "v": true}

// subcommand skips runc's global flags and returns the command and what
// follows it.
func subcommand(args []string) (string, []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			return a, args[i+1:]
		}
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") || runcBoolFlags[name] {
			continue
		}
		i++ // the flag's value
	}
	return "", nil
}

// flagValue finds --long VALUE, --long=VALUE, -short VALUE or -short=VALUE.
func flagValue(args []string, long, short string) string {
	for i, a := range args {
		name := strings.TrimLeft(a, "-")
		if name == a {
			continue
		}
		if k, v, ok := strings.Cut(name, "="); ok && (k == long || k == short) {
			return v
		}
		if (name == long || name == short) && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

// boundingSet reads this process's capability bounding set: what any
// process it starts can have at most.
func boundingSet() (uint64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, fmt.Errorf("no CapBnd in /proc/self/status")
}

// filterFile rewrites an OCI config.json or process.json in place,
// leaving every field but the capability lists as it is.
func filterFile(path string, bounding uint64) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	out, changed, err := filterSpec(data, bounding)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if !changed {
		return nil
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// filterSpec takes a config.json (capabilities under "process") or a
// process.json (capabilities at the top) and drops from every capability
// list the capabilities outside bounding.
func filterSpec(data []byte, bounding uint64) ([]byte, bool, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, false, err
	}
	if proc, ok := doc["process"]; ok {
		out, changed, err := filterProcess(proc, bounding)
		if err != nil || !changed {
			return data, false, err
		}
		doc["process"] = out
		data, err = json.Marshal(doc)
		return data, true, err
	}
	return filterProcess(data, bounding)
}

func filterProcess(data []byte, bounding uint64) ([]byte, bool, error) {
	var proc map[string]json.RawMessage
	if err := json.Unmarshal(data, &proc); err != nil {
		return nil, false, fmt.Errorf("process: %w", err)
	}
	raw, ok := proc["capabilities"]
	if !ok || string(raw) == "null" {
		return data, false, nil
	}
	var sets map[string][]string
	if err := json.Unmarshal(raw, &sets); err != nil {
		return nil, false, fmt.Errorf("capabilities: %w", err)
	}
	changed := false
	for name, caps := range sets {
		kept := caps[:0:0]
		for _, c := range caps {
			if bit, known := capBits[c]; known && bounding&(1<<bit) == 0 {
				changed = true
				continue
			}
			kept = append(kept, c)
		}
		sets[name] = kept
	}
	if !changed {
		return data, false, nil
	}
	var err error
	if proc["capabilities"], err = json.Marshal(sets); err != nil {
		return nil, false, err
	}
	data, err = json.Marshal(proc)
	return data, true, err
}

// capBits: Linux capability numbers (linux/capability.h). A name not listed
// is passed to runc as it is.
var capBits = map[string]uint{
	"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3,
	"CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
	"CAP_LINUX_IMMUTABLE": 9, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11,
	"CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15,
	"CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19,
	"CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
	"CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27,
	"CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31,
	"CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35,
	"CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39,
	"CAP_CHECKPOINT_RESTORE": 40,
}
