package supervisor

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"

	"github.com/kolo/xmlrpc"
)

// Fault codes supervisord returns (supervisor.xmlrpc.Faults).
const (
	FaultUnknownMethod        = 1
	FaultIncorrectParameters  = 2
	FaultBadArguments         = 3
	FaultSignatureUnsupported = 4
	FaultShutdownState        = 6
	FaultBadName              = 10
	FaultBadSignal            = 11
	FaultNoFile               = 20
	FaultNotExecutable        = 21
	FaultFailed               = 30
	FaultAbnormalTermination  = 40
	FaultSpawnError           = 50
	FaultAlreadyStarted       = 60
	FaultNotRunning           = 70
	FaultSuccess              = 80
	FaultAlreadyAdded         = 90
	FaultStillRunning         = 91
	FaultCantReread           = 92
)

var faultNames = map[int]string{
	FaultUnknownMethod:        "UNKNOWN_METHOD",
	FaultIncorrectParameters:  "INCORRECT_PARAMETERS",
	FaultBadArguments:         "BAD_ARGUMENTS",
	FaultSignatureUnsupported: "SIGNATURE_UNSUPPORTED",
	FaultShutdownState:        "SHUTDOWN_STATE",
	FaultBadName:              "BAD_NAME",
	FaultBadSignal:            "BAD_SIGNAL",
	FaultNoFile:               "NO_FILE",
	FaultNotExecutable:        "NOT_EXECUTABLE",
	FaultFailed:               "FAILED",
	FaultAbnormalTermination:  "ABNORMAL_TERMINATION",
	FaultSpawnError:           "SPAWN_ERROR",
	FaultAlreadyStarted:       "ALREADY_STARTED",
	FaultNotRunning:           "NOT_RUNNING",
	FaultSuccess:              "SUCCESS",
	FaultAlreadyAdded:         "ALREADY_ADDED",
	FaultStillRunning:         "STILL_RUNNING",
	FaultCantReread:           "CANT_REREAD",
}

// Fault is an XML-RPC fault returned by supervisord. Unlike kolo/xmlrpc's
// client, this package keeps the numeric code so callers can tell, say,
// NOT_RUNNING (harmless before a start) from BAD_NAME (a configuration error).
type Fault struct {
	Code   int
	String string
}

// Name returns supervisord's symbolic name for the fault code, such as
// "BAD_NAME", or "" for a code supervisord does not define.
func (f Fault) Name() string { return faultNames[f.Code] }

// Error renders the fault as "supervisor fault BAD_NAME (10): BAD_NAME: foo".
func (f Fault) Error() string {
	if name := f.Name(); name != "" {
		return fmt.Sprintf("supervisor fault %s (%d): %s", name, f.Code, f.String)
	}
	return fmt.Sprintf("supervisor fault %d: %s", f.Code, f.String)
}

// IsFault reports whether err is, or wraps, a supervisord fault with code.
func IsFault(err error, code int) bool {
	var f Fault
	if errors.As(err, &f) {
		return f.Code == code
	}
	var fp *Fault
	return errors.As(err, &fp) && fp != nil && fp.Code == code
}

// decodeResponse decodes an XML-RPC methodResponse body into result (nil
// discards it). A <fault> response is returned as a Fault error.
func decodeResponse(body []byte, result any) error {
	body = replaceControlBytes(body)
	kind, err := responseKind(body)
	if err != nil {
		return err
	}
	if kind == "fault" {
		var raw struct {
			Code   int    `xmlrpc:"faultCode"`
			String string `xmlrpc:"faultString"`
		}
		if err := xmlrpc.Response(body).Unmarshal(&raw); err != nil {
			return fmt.Errorf("decode fault: %w", err)
		}
		return Fault{Code: raw.Code, String: raw.String}
	}
	if result == nil {
		return nil
	}
	if err := xmlrpc.Response(body).Unmarshal(result); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("decode response: no value in response")
		}
		return fmt.Errorf("decode response: %w", err)
	}
	return nil
}

// responseKind returns "params" or "fault": the first element inside
// <methodResponse>. Looking at the structure (instead of searching the text
// for "<fault>") keeps a log line that mentions a fault from being taken for one.
func responseKind(body []byte) (string, error) {
	dec := xml.NewDecoder(bytes.NewReader(body))
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", fmt.Errorf("not an XML-RPC response: %w", err)
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch {
		case depth == 0 && start.Name.Local == "methodResponse":
			depth = 1
		case depth == 1 && (start.Name.Local == "params" || start.Name.Local == "fault"):
			return start.Name.Local, nil
		default:
			return "", fmt.Errorf("not an XML-RPC response: unexpected <%s>", start.Name.Local)
		}
	}
}

// replaceControlBytes replaces the control characters XML 1.0 forbids with
// U+FFFD. Python's xmlrpc writes them unescaped, so a log line with an ANSI
// colour code would otherwise make a whole response undecodable.
func replaceControlBytes(body []byte) []byte {
	illegal := func(r rune) bool { return r < 0x20 && r != '\t' && r != '\n' && r != '\r' }
	if bytes.IndexFunc(body, illegal) < 0 {
		return body
	}
	return bytes.Map(func(r rune) rune {
		if illegal(r) {
			return '\uFFFD'
		}
		return r
	}, body)
}
