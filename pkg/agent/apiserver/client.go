package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultTimeout bounds a request to the local API.
const DefaultTimeout = 10 * time.Second

// Client talks to the agent's local API over its unix socket.
type Client struct {
	socket string
	http   *http.Client
}

// NewClient returns a client of the API served on socket.
func NewClient(socket string, timeout time.Duration) *Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		DisableKeepAlives: true,
	}
	return &Client{socket: socket, http: &http.Client{Transport: tr, Timeout: timeout}}
}

// Socket is the path the client connects to.
func (c *Client) Socket() string { return c.socket }

// UnreachableError is returned when nothing answers on the socket, or the
// answer is not the agent's API.
type UnreachableError struct {
	Socket string
	Err    error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the agent's local API at %s: %v", e.Socket, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// State fetches the agent's State.
func (c *Client) State(ctx context.Context) (*State, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://agent"+StatePath, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &UnreachableError{Socket: c.socket, Err: unwrapURLError(err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, &UnreachableError{Socket: c.socket, Err: fmt.Errorf("GET %s: %s: %s", StatePath, resp.Status, strings.TrimSpace(string(body)))}
	}
	var st State
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, &UnreachableError{Socket: c.socket, Err: fmt.Errorf("decode %s: %w", StatePath, err)}
	}
	if st.APIVersion != APIVersion {
		return nil, fmt.Errorf("the agent at %s speaks API %q, this agentctl %q: use the agentctl of the agent's image", c.socket, st.APIVersion, APIVersion)
	}
	return &st, nil
}

// unwrapURLError drops net/http's `Get "http://agent/v1/state":` prefix,
// which names a URL the user never typed.
func unwrapURLError(err error) error {
	var u *url.Error
	if errors.As(err, &u) {
		return u.Err
	}
	return err
}
