package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"k8s.io/klog/v2"
)

// maxSocketPath is the kernel's limit on unix socket paths (sun_path holds
// 108 bytes with the terminating NUL).
const maxSocketPath = 107

// Server serves the local API on a unix socket.
type Server struct {
	path string
	srv  *http.Server
	done chan struct{}
}

// Handler serves StatePath with what state returns, as JSON.
func Handler(state func() State) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(StatePath, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "only GET", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(state()); err != nil {
			klog.ErrorS(err, "Writing local API response failed")
		}
	})
	return mux
}

// Serve listens on the unix socket path, readable and writable by the
// owner only (0600, root for the agent), and serves Handler(state) in the
// background. A socket left at path by an earlier run is replaced; a live
// one (another agent answers on it) or a file that is not a socket is an
// error.
func Serve(path string, state func() State) (*Server, error) {
	l, err := listen(path)
	if err != nil {
		return nil, err
	}
	s := &Server{
		path: path,
		srv:  &http.Server{Handler: Handler(state), ReadHeaderTimeout: 10 * time.Second},
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.ErrorS(err, "Local API server stopped", "socket", path)
		}
	}()
	klog.InfoS("Serving local API", "socket", path)
	return s, nil
}

// Path is the socket's path.
func (s *Server) Path() string { return s.path }

// Close stops the server and removes its socket.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
	}
	<-s.done
	// Shutdown closed the listener, which unlinks the socket; this is
	// for the case it did not.
	if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		klog.ErrorS(err, "Removing local API socket failed", "socket", s.path)
	}
}

func listen(path string) (net.Listener, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("local API socket %q: not an absolute path", path)
	}
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("local API socket %q: longer than %d bytes", path, maxSocketPath)
	}
	// A directory we create is the owner's only, so nobody else can
	// reach the socket even before its own mode is set.
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("local API socket: %w", err)
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on local API socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("local API socket: %w", err)
	}
	return l, nil
}

// removeStaleSocket removes a socket at path that nobody answers on.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("local API socket: %w", err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("local API socket %s: exists and is not a socket", path)
	}
	if conn, err := net.DialTimeout("unix", path, time.Second); err == nil {
		conn.Close()
		return fmt.Errorf("local API socket %s: another process is serving on it (is another agent running?)", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("local API socket: remove stale socket: %w", err)
	}
	return nil
}
