package serve

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"

	"github.com/skiffdeploy/skiff/inventory"
)

// MaxBody is the largest webhook body taken; a larger one is answered 413 unread.
const MaxBody = 1 << 20

// errUnauthorized is a request whose secret is missing or wrong. Nothing of its body is read as JSON or logged.
var errUnauthorized = errors.New("bad or missing secret")

// malformedError is a verified request whose body or headers cannot be read as the trigger's kind: 400.
type malformedError struct{ msg string }

func (e *malformedError) Error() string { return e.msg }

func malformed(format string, args ...any) error {
	return &malformedError{msg: fmt.Sprintf(format, args...)}
}

// Event is what one verified webhook asks for, whatever sent it.
type Event struct {
	// Delivery identifies the delivery (X-Gitlab-Event-UUID, X-GitHub-Delivery, the registry event id); a
	// delivery seen before queues nothing. It is a hash of the body when the sender gives none.
	Delivery string
	// What names the event as its sender does ("Push Hook", "release", "push of shop:v2").
	What string
	// Ignored says why a valid event deploys nothing ("" when it deploys).
	Ignored string
	// Ref is the branch or tag name; SHA the commit (source and git-driven image apps); Tag the image tag to
	// deploy (image apps).
	Ref, SHA, Tag string
}

// hookKind verifies and reads the requests of one kind of trigger.
type hookKind struct {
	// verify reports whether the request carries the trigger's secret. It runs before anything else reads
	// the body.
	verify func(h http.Header, body []byte, secret string) bool
	// parse reads a verified request.
	parse func(h http.Header, body []byte, t *inventory.Trigger, app *inventory.App) (Event, error)
}

// hookKinds are the kinds of trigger by inventory name.
var hookKinds = map[string]hookKind{
	inventory.TriggerRegistry: {verify: verifyBearer, parse: parseRegistry},
	inventory.TriggerGitLab:   {verify: verifyGitLab, parse: parseGitLab},
	inventory.TriggerGitHub:   {verify: verifyHubSignature, parse: parseGitHub},
	inventory.TriggerGeneric:  {verify: verifySkiffSignature, parse: parseGeneric},
}

// equal compares a secret in constant time, whatever the lengths.
func equal(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1 && want != ""
}

// verifyBearer checks Authorization: Bearer <secret> (Docker distribution's notification endpoints).
func verifyBearer(h http.Header, _ []byte, secret string) bool {
	v, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer ")
	return ok && equal(strings.TrimSpace(v), secret)
}

// verifyGitLab checks X-Gitlab-Token.
func verifyGitLab(h http.Header, _ []byte, secret string) bool {
	return equal(h.Get("X-Gitlab-Token"), secret)
}

// verifyHubSignature checks X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body> (GitHub).
func verifyHubSignature(h http.Header, body []byte, secret string) bool {
	return verifyHMAC(h.Get("X-Hub-Signature-256"), body, secret)
}

// verifySkiffSignature checks X-Skiff-Signature, made like GitHub's.
func verifySkiffSignature(h http.Header, body []byte, secret string) bool {
	return verifyHMAC(h.Get("X-Skiff-Signature"), body, secret)
}

func verifyHMAC(header string, body []byte, secret string) bool {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok || secret == "" {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	return hmac.Equal(got, Sign(body, secret))
}

// Sign returns the HMAC-SHA256 of body under secret, as X-Hub-Signature-256 and X-Skiff-Signature carry it
// (hex, after "sha256=").
func Sign(body []byte, secret string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return m.Sum(nil)
}

// bodyDelivery is the delivery id of a request whose sender gives none: the same body is the same delivery.
func bodyDelivery(body []byte) string {
	sum := sha256.Sum256(body)
	return "body-" + hex.EncodeToString(sum[:12])
}

// deliveryOr returns the header's delivery id, bounded, or the body's.
func deliveryOr(id string, body []byte) string {
	id = strings.TrimSpace(id)
	if id == "" || len(id) > 200 {
		return bodyDelivery(body)
	}
	return id
}

// refMatches applies the trigger's ref glob ("" matches everything).
func refMatches(t *inventory.Trigger, ref string) bool {
	if t.Ref == "" {
		return true
	}
	ok, _ := path.Match(t.Ref, ref)
	return ok
}

// gitEvent finishes an event that names a commit: the ref filter, and for image apps the tag (the trigger's
// template, else def).
func gitEvent(ev Event, t *inventory.Trigger, app *inventory.App, def string) (Event, error) {
	if ev.Ignored != "" {
		return ev, nil
	}
	if !refMatches(t, ev.Ref) {
		ev.Ignored = fmt.Sprintf("ref %q does not match %q", ev.Ref, t.Ref)
		return ev, nil
	}
	if ev.SHA != "" && !validSHA(ev.SHA) {
		return ev, malformed("%s: commit %q is not a hex object id", ev.What, ev.SHA)
	}
	if app.Kind != inventory.KindImage {
		if ev.SHA == "" && ev.Ref == "" {
			return ev, malformed("%s: no commit and no ref", ev.What)
		}
		return ev, nil
	}
	short := ev.SHA
	if len(short) > 8 {
		short = short[:8]
	}
	if t.Tag != "" {
		tag, err := t.ExpandTag(inventory.TagData{SHA: ev.SHA, ShortSHA: short, Ref: ev.Ref, Tag: def})
		if err != nil {
			return ev, malformed("%s: %v", ev.What, err)
		}
		ev.Tag = tag
		return ev, nil
	}
	if ev.Tag = def; ev.Tag == "" {
		ev.Tag = ev.SHA
	}
	if !validTag(ev.Tag) {
		return ev, malformed("%s: %q is not an image tag", ev.What, ev.Tag)
	}
	return ev, nil
}

// validSHA accepts a full or abbreviated hex object id.
func validSHA(s string) bool {
	if len(s) < 7 || len(s) > 64 {
		return false
	}
	_, err := hex.DecodeString(s + strings.Repeat("0", len(s)%2))
	return err == nil
}
