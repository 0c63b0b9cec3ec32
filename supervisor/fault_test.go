package supervisor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestFault_Decode(t *testing.T) {
	tests := []struct {
		name      string
		file      string
		wantFault *Fault // nil: no fault expected
		wantErr   bool   // a non-fault error expected
		wantText  string // Error() of the fault
	}{
		{
			name:      "bad name",
			file:      "fault_bad_name.xml",
			wantFault: &Fault{Code: FaultBadName, String: "BAD_NAME: foo"},
			wantText:  "supervisor fault BAD_NAME (10): BAD_NAME: foo",
		},
		{
			name:      "i4 code, members reversed, one line",
			file:      "fault_not_running_i4.xml",
			wantFault: &Fault{Code: FaultNotRunning, String: "NOT_RUNNING: api:api"},
			wantText:  "supervisor fault NOT_RUNNING (70): NOT_RUNNING: api:api",
		},
		{
			name:      "escaped fault string",
			file:      "fault_escaped.xml",
			wantFault: &Fault{Code: FaultSpawnError, String: `SPAWN_ERROR: web:a <b> & "c"`},
			wantText:  `supervisor fault SPAWN_ERROR (50): SPAWN_ERROR: web:a <b> & "c"`,
		},
		{
			name:      "code supervisord does not define",
			file:      "fault_unknown_code.xml",
			wantFault: &Fault{Code: 1234, String: "custom plugin fault"},
			wantText:  "supervisor fault 1234: custom plugin fault",
		},
		{name: "success is not a fault", file: "ok_bool.xml"},
		{name: "log text mentioning a fault is not a fault", file: "ok_log_mentions_fault.xml"},
		{name: "html error page", file: "not_xmlrpc.html", wantErr: true},
		{name: "truncated body", file: "truncated.xml", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var result any
			err = decodeResponse(body, &result)
			var f Fault
			isFault := errors.As(err, &f)
			switch {
			case tc.wantFault != nil:
				if !isFault {
					t.Fatalf("decodeResponse() error = %v, want fault %+v", err, *tc.wantFault)
				}
				if f != *tc.wantFault {
					t.Errorf("fault = %+v, want %+v", f, *tc.wantFault)
				}
				if got := f.Error(); got != tc.wantText {
					t.Errorf("Error() = %q, want %q", got, tc.wantText)
				}
				wrapped := fmt.Errorf("stopProcess api: %w", err)
				if !IsFault(wrapped, tc.wantFault.Code) || IsFault(wrapped, tc.wantFault.Code+1) {
					t.Errorf("IsFault(wrapped, %d) does not match the code alone", tc.wantFault.Code)
				}
			case tc.wantErr:
				if err == nil || isFault {
					t.Fatalf("decodeResponse() error = %v, want a decoding error", err)
				}
			default:
				if err != nil {
					t.Fatalf("decodeResponse() error = %v, want success", err)
				}
			}
		})
	}
}

func TestFault_DecodeResult(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		wantText string
		wantOff  int64
	}{
		{name: "log text mentioning a fault", file: "ok_log_mentions_fault.xml", wantText: "<fault><value>faultCode 10</value></fault>\n", wantOff: 42},
		{name: "raw control characters", file: "ok_log_control_chars.xml", wantText: "\uFFFD[31mred\uFFFD[0m\n\uFFFDctl\n", wantOff: 22},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var res []any
			if err := decodeResponse(body, &res); err != nil {
				t.Fatal(err)
			}
			if len(res) != 3 {
				t.Fatalf("decoded %#v, want [text, offset, overflow]", res)
			}
			if res[0] != tc.wantText || res[1] != tc.wantOff || res[2] != false {
				t.Errorf("decoded %#v, want [%q, %d, false]", res, tc.wantText, tc.wantOff)
			}
		})
	}
}

func TestIsFault_PointerAndOtherErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code int
		want bool
	}{
		{name: "value", err: Fault{Code: FaultBadName}, code: FaultBadName, want: true},
		{name: "pointer", err: fmt.Errorf("x: %w", &Fault{Code: FaultNotRunning}), code: FaultNotRunning, want: true},
		{name: "other code", err: Fault{Code: FaultBadName}, code: FaultNotRunning},
		{name: "not a fault", err: errors.New("BAD_NAME"), code: FaultBadName},
		{name: "nil", err: nil, code: FaultBadName},
		{name: "through StartError", err: &StartError{Name: "a:a", Err: Fault{Code: FaultSpawnError}}, code: FaultSpawnError, want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsFault(tc.err, tc.code); got != tc.want {
				t.Errorf("IsFault(%v, %d) = %v, want %v", tc.err, tc.code, got, tc.want)
			}
		})
	}
}

func TestResolve_Patterns(t *testing.T) {
	procs := []ProcessInfo{
		{Group: "api", Name: "api"},
		{Group: "web", Name: "b"},
		{Group: "web", Name: "a"},
		{Group: "worker", Name: "worker_1"},
		{Group: "worker", Name: "worker_0"},
		{Group: "x", Name: "dup"},
		{Group: "y", Name: "dup"},
	}
	tests := []struct {
		name     string
		patterns []string
		want     []string
		wantErr  string
	}{
		{name: "program named like its group", patterns: []string{"api"}, want: []string{"api:api"}},
		{name: "group star", patterns: []string{"web:*"}, want: []string{"web:a", "web:b"}},
		{name: "group name alone", patterns: []string{"web"}, want: []string{"web:a", "web:b"}},
		{name: "numprocs program", patterns: []string{"worker"}, want: []string{"worker:worker_0", "worker:worker_1"}},
		{name: "full name", patterns: []string{"web:b"}, want: []string{"web:b"}},
		{name: "unique bare name", patterns: []string{"a"}, want: []string{"web:a"}},
		{name: "sorted and deduplicated", patterns: []string{"web:b", "web:*", "api"}, want: []string{"api:api", "web:a", "web:b"}},
		{name: "none", patterns: nil, want: nil},
		{name: "ambiguous bare name", patterns: []string{"dup"}, wantErr: `"dup" is ambiguous: it names x:dup, y:dup`},
		{name: "unknown lists what exists", patterns: []string{"nope"}, wantErr: `no such program "nope" (supervisord has: api:api, web:a, web:b,`},
		{name: "unknown process of known group", patterns: []string{"web:zzz"}, wantErr: `no such program "web:zzz"`},
		{name: "unknown group star", patterns: []string{"zzz:*"}, wantErr: `no such program "zzz:*"`},
		{name: "empty pattern", patterns: []string{""}, wantErr: `no such program ""`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resolve(procs, tc.patterns)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("resolve() error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("resolve() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestLastLines_Window(t *testing.T) {
	tests := []struct {
		name     string
		text     string
		overflow bool
		n        int
		want     string
	}{
		{name: "fewer lines than asked", text: "a\nb\n", n: 5, want: "a\nb"},
		{name: "last n", text: "a\nb\nc\nd\n", n: 2, want: "c\nd"},
		{name: "all", text: "a\nb\n", n: 0, want: "a\nb"},
		{name: "partial first line dropped on overflow", text: "tial\nb\nc\n", overflow: true, n: 10, want: "b\nc"},
		{name: "no trailing newline", text: "a\nb", n: 1, want: "b"},
		{name: "empty", text: "", n: 3, want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := lastLines(tc.text, tc.overflow, tc.n); got != tc.want {
				t.Errorf("lastLines() = %q, want %q", got, tc.want)
			}
		})
	}
}
