package noderoute

import (
	"errors"
	"testing"
)

func TestErrorKind(t *testing.T) {
	if ErrorKind(nil) != "" || ErrorKind(errors.New("x")) != ErrorKindOther {
		t.Error("nil or plain error misclassified")
	}
	err := kindError(ErrorKindFlows, errors.New("boom"))
	if ErrorKind(err) != ErrorKindFlows || err.Error() != "boom" {
		t.Errorf("kind %q message %q", ErrorKind(err), err)
	}
}
