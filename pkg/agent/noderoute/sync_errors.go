package noderoute

import "errors"

// Kinds of sync errors, as ErrorKind returns them.
const (
	// ErrorKindFlows: OVS refused a flow change or was not reachable.
	ErrorKindFlows = "flows"
	// ErrorKindRoutes: a netlink route call failed.
	ErrorKindRoutes = "routes"
	// ErrorKindNodeCache: the Node could not be read from the informer
	// cache.
	ErrorKindNodeCache = "node_cache"
	// ErrorKindPartial: a full sync attempt in which some Nodes failed
	// (each of those is counted as a SyncNode error of its own kind).
	ErrorKindPartial = "partial"
	// ErrorKindOther is anything else.
	ErrorKindOther = "other"
)

// ErrorKinds lists every kind ErrorKind returns for a non-nil error.
var ErrorKinds = []string{ErrorKindFlows, ErrorKindRoutes, ErrorKindNodeCache, ErrorKindPartial, ErrorKindOther}

// syncError tags an error with its kind; its message is the wrapped one's.
type syncError struct {
	kind string
	err  error
}

func (e *syncError) Error() string { return e.err.Error() }
func (e *syncError) Unwrap() error { return e.err }

func kindError(kind string, err error) error {
	if err == nil {
		return nil
	}
	return &syncError{kind: kind, err: err}
}

// ErrorKind classifies an error returned by a sync: "" for nil, else one of
// ErrorKinds.
func ErrorKind(err error) string {
	if err == nil {
		return ""
	}
	var se *syncError
	if errors.As(err, &se) {
		return se.kind
	}
	return ErrorKindOther
}
