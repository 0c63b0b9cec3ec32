package inventory

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Duration is a time.Duration written in the inventory as a Go duration
// string such as "10s" or "1m30s". A bare TOML integer is rejected rather
// than guessed at: nobody can tell whether 10 meant seconds or nanoseconds.
type Duration struct{ time.Duration }

// String returns the duration the way it is written in the inventory, with
// zero trailing units dropped: "10m" rather than "10m0s".
func (d Duration) String() string {
	s := d.Duration.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// MarshalText renders the duration as a string such as "10s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// MarshalJSON renders the duration as a JSON string such as "10s", so that
// the resolved inventory prints the way it is written.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("invalid duration %q (write it like \"10s\", \"5m\" or \"1h30m\")", text)
	}
	d.Duration = v
	return nil
}

// UnmarshalTOML accepts a TOML string holding a duration, and explains the
// fix when it is given a bare number instead.
func (d *Duration) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case string:
		return d.UnmarshalText([]byte(x))
	case int64:
		return fmt.Errorf("durations are strings, write \"%ds\"", x)
	case float64:
		return errors.New(`durations are strings, write "10s"`)
	default:
		return fmt.Errorf("must be a duration string such as \"10s\", not %s", tomlTypeName(v))
	}
}
