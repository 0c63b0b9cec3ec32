package compose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Flavour is how compose is installed on a target.
type Flavour string

// The two ways compose is installed.
const (
	// Plugin is Compose v2 as a docker CLI plugin: `docker compose`.
	Plugin Flavour = "plugin"
	// Standalone is the `docker-compose` binary: Compose v1 (Python) or a v2 binary installed standalone.
	Standalone Flavour = "standalone"
)

// Mode says which flavour to use: the one found (Auto, plugin first) or a forced one.
type Mode string

// The modes ParseMode accepts.
const (
	Auto            Mode = "auto"
	ForcePlugin     Mode = "plugin"
	ForceStandalone Mode = "standalone"
)

// ParseMode reads a mode as an operator writes it ("" means auto).
func ParseMode(s string) (Mode, error) {
	switch Mode(strings.ToLower(strings.TrimSpace(s))) {
	case "", Auto:
		return Auto, nil
	case ForcePlugin:
		return ForcePlugin, nil
	case ForceStandalone:
		return ForceStandalone, nil
	}
	return "", fmt.Errorf("invalid compose mode %q (want auto, plugin or standalone)", s)
}

// Version is a compose version as `version --short` prints it.
type Version struct {
	Major, Minor, Patch int
}

var versionRE = regexp.MustCompile(`^v?([0-9]+)\.([0-9]+)(?:\.([0-9]+))?`)

// ParseVersion reads "1.29.2", "v2.21.0" or "2.24.6-desktop.1" (anything after the numbers is ignored).
func ParseVersion(s string) (Version, error) {
	m := versionRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return Version{}, fmt.Errorf("unrecognised compose version %q", strings.TrimSpace(s))
	}
	var v Version
	v.Major, _ = strconv.Atoi(m[1])
	v.Minor, _ = strconv.Atoi(m[2])
	if m[3] != "" {
		v.Patch, _ = strconv.Atoi(m[3])
	}
	return v, nil
}

// AtLeast reports whether v is major.minor.patch or newer.
func (v Version) AtLeast(major, minor, patch int) bool {
	if v.Major != major {
		return v.Major > major
	}
	if v.Minor != minor {
		return v.Minor > minor
	}
	return v.Patch >= patch
}

// String renders the version as major.minor.patch.
func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Tool is the compose found on a target: its flavour and version decide the command lines.
type Tool struct {
	Flavour Flavour
	Version Version
}

// String names the tool as an operator would type it, with its version.
func (t Tool) String() string {
	return strings.Join(t.base(), " ") + " " + t.Version.String()
}

// base is the program and, for the plugin, its subcommand.
func (t Tool) base() []string {
	if t.Flavour == Plugin {
		return []string{"docker", "compose"}
	}
	return []string{"docker-compose"}
}

// SupportsWait reports whether `up --wait` exists: Compose v2.1.1 and later, in either flavour. With it,
// up itself waits until the service runs (and is healthy, when it has a healthcheck).
func (t Tool) SupportsWait() bool { return t.Version.AtLeast(2, 1, 1) }

// VersionCommand is the command that prints a flavour's version alone.
func VersionCommand(f Flavour) []string {
	return append(Tool{Flavour: f}.base(), "version", "--short")
}

// Runner runs one command on a target and returns its standard output; a failed command returns an error
// that says why (exit status and the end of its standard error).
type Runner interface {
	Run(ctx context.Context, argv []string, stdin io.Reader) (stdout []byte, err error)
}

// ErrNotFound is wrapped by Detect's error when the wanted compose flavour is not installed on the target.
var ErrNotFound = errors.New("docker compose not found on the host")

// Detect finds the compose to use on a target. Auto tries the v2 plugin first, then the standalone binary;
// a forced mode tries only that flavour, and says so when it is missing.
func Detect(ctx context.Context, r Runner, mode Mode) (Tool, error) {
	try := func(f Flavour) (Tool, error) {
		out, err := r.Run(ctx, VersionCommand(f), nil)
		if err != nil {
			return Tool{}, err
		}
		v, err := ParseVersion(string(out))
		if err != nil {
			return Tool{}, err
		}
		return Tool{Flavour: f, Version: v}, nil
	}
	switch mode {
	case ForcePlugin:
		t, err := try(Plugin)
		if err != nil {
			return Tool{}, fmt.Errorf("compose is forced to the v2 plugin (`docker compose`), which does not work on the host: %w: %w", ErrNotFound, err)
		}
		return t, nil
	case ForceStandalone:
		t, err := try(Standalone)
		if err != nil {
			return Tool{}, fmt.Errorf("compose is forced to standalone `docker-compose`, which does not work on the host: %w: %w", ErrNotFound, err)
		}
		return t, nil
	case Auto, "":
		t, perr := try(Plugin)
		if perr == nil {
			return t, nil
		}
		t, serr := try(Standalone)
		if serr == nil {
			return t, nil
		}
		return Tool{}, fmt.Errorf("%w: neither `docker compose` (v2 plugin: %v) nor `docker-compose` (standalone: %v) works; install one of them", ErrNotFound, perr, serr)
	}
	return Tool{}, fmt.Errorf("invalid compose mode %q", mode)
}

// Project is the compose project a service belongs to: its name and its files, the app's compose.yaml first
// and skiff's override last. The project directory is the first file's directory.
type Project struct {
	Name  string
	Files []string
}

// Validate checks the project name and that every file is an absolute path.
func (p Project) Validate() error {
	if err := ValidateProject(p.Name); err != nil {
		return err
	}
	if len(p.Files) == 0 {
		return errors.New("compose project without files")
	}
	for _, f := range p.Files {
		if !strings.HasPrefix(f, "/") || strings.ContainsAny(f, "\x00\n") {
			return fmt.Errorf("compose file %q must be an absolute path", f)
		}
	}
	return nil
}

// args are the global options that select the project: -p NAME -f FILE….
func (p Project) args() []string {
	out := []string{"-p", p.Name}
	for _, f := range p.Files {
		out = append(out, "-f", f)
	}
	return out
}

// Up brings one service of the project up in the background without touching the services it depends on
// and without building: `up -d --no-deps --no-build [--wait] -- SERVICE`. The image must already be on the
// host (skiff pulls it first and pins it by digest), so compose does not pull either.
func (t Tool) Up(p Project, service string) ([]string, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if err := ValidateService(service); err != nil {
		return nil, err
	}
	argv := append(append(t.base(), p.args()...), "up", "-d", "--no-deps", "--no-build")
	if t.SupportsWait() {
		argv = append(argv, "--wait")
	}
	return append(argv, "--", service), nil
}
