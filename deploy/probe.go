package deploy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"

	"github.com/skiffdeploy/skiff/compose"
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/remote"
	"github.com/skiffdeploy/skiff/supervisor"
)

// Facts is what `skiff check` learns about a target: who we are there and which of the tools skiff drives
// are present. Empty fields mean "not found".
type Facts struct {
	User        string   `json:"user"`
	OS          string   `json:"os"`
	Kernel      string   `json:"kernel"`
	Docker      string   `json:"docker,omitempty"`
	Compose     string   `json:"compose,omitempty"`
	Supervisord []string `json:"supervisord,omitempty"`
	Problems    []string `json:"problems,omitempty"`

	dockerCLI bool // the docker client is installed, so compose is worth looking for
}

// probeScript prints key=value lines; it only reads, so it is safe on any host. Docker's daemon may refuse
// a user outside the docker group: that is reported, not hidden.
const probeScript = `echo "user=$(id -un)"
if [ -r /etc/os-release ]; then . /etc/os-release; echo "os=$PRETTY_NAME"; else echo "os=$(uname -s)"; fi
echo "kernel=$(uname -sr)"
if command -v docker >/dev/null 2>&1; then
  echo "docker_cli=yes"
  v=$(docker version --format '{{.Server.Version}}' 2>&1) && echo "docker=$v" || echo "docker_error=$(echo "$v" | tail -n 1)"
fi
exit 0`

// defaultSupervisorURLs are tried by Probe when no app on the host names its supervisord.
func defaultSupervisorURLs() []string {
	return []string{"unix:///var/run/supervisor.sock", "unix:///run/supervisor.sock", "http://127.0.0.1:9001"}
}

// Needs is what the apps placed on a host require of it; Probe fails when one is missing.
type Needs struct {
	Docker      bool     // an image app runs there: docker and a compose flavour must work
	Supervisors []string // supervisord URLs that source apps use there
}

// NeedsOf collects the Needs of every app that the inventory places on host.
func NeedsOf(inv *inventory.Inventory, host string) Needs {
	var n Needs
	seen := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(inv.Apps)) {
		app := inv.Apps[name]
		hosts, err := inv.AppHosts(app, []string{host})
		if err != nil || len(hosts) == 0 {
			continue
		}
		if app.Kind == inventory.KindImage {
			n.Docker = true
		}
		if u := app.Supervisor.URL; u != "" && !seen[u] {
			seen[u] = true
			n.Supervisors = append(n.Supervisors, u)
		}
	}
	return n
}

// Probe gathers Facts from a target over an established connection and checks them against needs. Every
// supervisord address is dialled from the target's side, exactly as a deploy will reach it.
func Probe(ctx context.Context, c HostConn, needs Needs) (*Facts, error) {
	res, err := c.Run(ctx, remote.Command{Script: probeScript, ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	f := parseFacts(res.Stdout)
	// The compose flavour is found exactly as an image deploy finds it.
	if f.dockerCLI {
		if tool, err := compose.Detect(ctx, composeRunner{c}, compose.Auto); err == nil {
			f.Compose = tool.String()
		}
	}
	urls := needs.Supervisors
	if len(urls) == 0 {
		urls = defaultSupervisorURLs()
	}
	var missing []string
	for _, u := range urls {
		a, err := supervisor.ParseURL(u)
		if err == nil {
			var conn net.Conn
			if conn, err = c.Dial(ctx, a.Network, a.Addr); err == nil {
				conn.Close()
				f.Supervisord = append(f.Supervisord, u)
				continue
			}
		}
		if len(needs.Supervisors) > 0 {
			missing = append(missing, fmt.Sprintf("supervisord %s: %v", u, err))
		}
	}
	if needs.Docker {
		if f.Docker == "" {
			missing = append(missing, "docker engine not usable")
		}
		if f.Compose == "" {
			missing = append(missing, "neither `docker compose` nor `docker-compose` found")
		}
	}
	if len(missing) > 0 {
		return f, fmt.Errorf("%s", strings.Join(append(missing, f.Problems...), "; "))
	}
	return f, nil
}

func parseFacts(out []byte) *Facts {
	f := &Facts{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch k {
		case "user":
			f.User = v
		case "os":
			f.OS = v
		case "kernel":
			f.Kernel = v
		case "docker":
			f.Docker = v
		case "docker_cli":
			f.dockerCLI = true
		case "docker_error":
			f.Problems = append(f.Problems, "docker: "+v)
		}
	}
	return f
}
