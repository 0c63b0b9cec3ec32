// Package inventory loads and validates skiff's host inventory (hosts.toml):
// the hosts to reach over SSH, the registries to log in to, the apps to
// deploy and the schedules to run. Loading is strict: unknown keys, wrong
// types and dangling references are errors that name the file, the key and
// the line, because a typo in a deploy inventory should stop the deploy, not
// be ignored. Besides reading the file, the package does no I/O.
package inventory

import (
	"fmt"
	"os"
)

// Inventory is a loaded, validated inventory with every default applied.
type Inventory struct {
	// File is the path the inventory was read from, as given.
	File string `json:"file"`
	// Defaults are the [defaults] values after the built-in defaults.
	Defaults Defaults `json:"defaults"`
	// Hosts by name, with defaults applied and "~/" expanded in paths.
	Hosts map[string]*Host `json:"hosts"`
	// Registries by name.
	Registries map[string]*Registry `json:"registries"`
	// Apps by name.
	Apps map[string]*App `json:"apps"`
	// Schedules in file order.
	Schedules []*Schedule `json:"schedules"`
	// Serve configures `skiff serve`; nil when the file has no [serve] table.
	Serve *Serve `json:"serve,omitempty"`
	// Triggers in file order: the webhooks `skiff serve` takes.
	Triggers []*Trigger `json:"triggers,omitempty"`
	// Notify are the [[notify]] entries in file order.
	Notify []*Notify `json:"notify,omitempty"`
}

// Defaults holds the [defaults] table: connection settings every host
// inherits unless it sets its own.
type Defaults struct {
	// User is the SSH user; empty means the caller's choice (the CLI uses the
	// current user).
	User string `json:"user"`
	// Port is the SSH port, 22 unless set.
	Port int `json:"port"`
	// IdentityFiles are private key files to try, besides the SSH agent.
	IdentityFiles []string `json:"identity_files"`
	// KnownHosts is the known_hosts file used to check host keys.
	KnownHosts string `json:"known_hosts"`
	// ConnectTimeout bounds the TCP connect and SSH handshake, 10s unless set.
	ConnectTimeout Duration `json:"connect_timeout"`
	// Keepalive is the interval of SSH keepalive requests, 15s unless set;
	// 0s turns them off.
	Keepalive Duration `json:"keepalive"`
	// Jump is the inventory host every other host is reached through.
	Jump string `json:"jump"`
}

// Host is one SSH target, with the defaults already applied.
type Host struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	// User is empty when neither the host nor [defaults] sets it.
	User           string   `json:"user"`
	Port           int      `json:"port"`
	IdentityFiles  []string `json:"identity_files"`
	KnownHosts     string   `json:"known_hosts"`
	ConnectTimeout Duration `json:"connect_timeout"`
	Keepalive      Duration `json:"keepalive"`
	// Jump names another inventory host to go through; empty means direct.
	Jump string `json:"jump"`
	// Groups are the groups the host declares, as written ("all" is
	// implicit and not listed).
	Groups []string `json:"groups"`
}

// Registry is a container registry that image apps log in to. The password
// is never in the file: PasswordEnv names the environment variable that
// holds it.
type Registry struct {
	Name        string `json:"name"`
	Server      string `json:"server"`
	Username    string `json:"username"`
	PasswordEnv string `json:"password_env"`
}

// AppKind tells how an app is shipped.
type AppKind string

// The kinds of app: a source tree shipped into release directories, or a
// container image run by docker compose.
const (
	KindSource AppKind = "source"
	KindImage  AppKind = "image"
)

// App is one deployable application.
type App struct {
	Name string  `json:"name"`
	Kind AppKind `json:"kind"`
	// Hosts are host and group names as written in the file.
	Hosts []string `json:"hosts"`
	// Path is the absolute, clean directory of the app on the targets.
	Path string `json:"path"`
	// Source is the local directory to ship, made relative to the directory
	// of the inventory file when written relative (source apps only).
	Source string `json:"source,omitempty"`
	// Exclude are patterns of files not to ship.
	Exclude []string `json:"exclude,omitempty"`
	// Shared are relative paths kept under Path/shared and linked into every
	// release.
	Shared []string `json:"shared,omitempty"`
	// KeepReleases is how many releases to keep, 5 unless set, at least 2.
	KeepReleases int   `json:"keep_releases,omitempty"`
	Hooks        Hooks `json:"hooks"`
	// Builds are dependency environments made once per content of their inputs and linked into each release
	// (source apps only).
	Builds     []Build    `json:"builds,omitempty"`
	Supervisor Supervisor `json:"supervisor"`
	Check      Check      `json:"check"`
	Rollout    Rollout    `json:"rollout"`
	// ComposeFile is a local compose file to upload to Path/compose.yaml,
	// resolved like Source (image apps only).
	ComposeFile string `json:"compose_file,omitempty"`
	// Service is the compose service to bring up (image apps only).
	Service string `json:"service,omitempty"`
	// Image is the image reference without tag; setting it makes an image app.
	Image string `json:"image,omitempty"`
	// Registry names the entry of Inventory.Registries to log in to.
	Registry string `json:"registry,omitempty"`
	// KeepImages is how many images to keep, 3 unless set, at least 1.
	KeepImages int   `json:"keep_images,omitempty"`
	Prune      Prune `json:"prune"`
	// Env is the app's environment file, nil when it has none.
	Env *EnvFile `json:"env,omitempty"`
	// Timeout bounds one deploy or rollback on one host, 10m unless set. A
	// lock older than this is reported as stale.
	Timeout Duration `json:"timeout"`
}

// Hooks are shell commands run on the target inside the new release
// directory of a source app.
type Hooks struct {
	BeforeSwitch []string `json:"before_switch"`
	AfterSwitch  []string `json:"after_switch"`
}

// Build is one [[apps.NAME.builds]] entry: a directory (a venv, node_modules) made by Run in
// <path>/builds/<name>-<key> on the target, where key hashes Run and the content of Inputs, and linked into
// every release at Path. A release whose key was built before on the host reuses that build.
type Build struct {
	// Name is [a-z0-9-]+, unique within the app.
	Name string `json:"name"`
	// Path is where the build appears in each release: relative, clean, not shared, not inside another build.
	Path string `json:"path"`
	// Inputs are files of the release (relative paths) whose content, with Run, keys the build.
	Inputs []string `json:"inputs"`
	// Run is the shell command that makes the build into $SKIFF_BUILD_DIR, run in the new release directory.
	Run string `json:"run"`
}

// Supervisor says how to reach supervisord on the targets and which of its
// programs belong to the app.
type Supervisor struct {
	// URL is "unix:///absolute/socket" or "http://host:port", reached
	// through the SSH connection. Empty when the app has no processes.
	URL string `json:"url,omitempty"`
	// Programs are "name", "group:name" or "group:*".
	Programs    []string `json:"programs,omitempty"`
	Username    string   `json:"username,omitempty"`
	PasswordEnv string   `json:"password_env,omitempty"`
}

// Check is how a deploy proves the app works before it is kept.
type Check struct {
	Ports []int `json:"ports"`
	// HTTP is an http:// or https:// URL that must answer 2xx.
	HTTP    string   `json:"http,omitempty"`
	Timeout Duration `json:"timeout"`
}

// Rollout is how a deploy spreads over the app's hosts.
type Rollout struct {
	// Parallel is how many hosts run at once, 10 unless set.
	Parallel int `json:"parallel"`
	// Batch is the batch size: a count ("2") or a percentage ("50%") of the
	// hosts; "100%" unless set. Batches run one after another.
	Batch string `json:"batch"`
	// MaxFail is how many failed hosts are tolerated before stopping.
	MaxFail int `json:"max_fail"`
}

// Prune is the retention of old images.
type Prune struct {
	// MinAge protects images younger than this from pruning.
	MinAge Duration `json:"min_age"`
}

// The jobs a schedule can run.
const (
	JobPrune  = "prune"
	JobCheck  = "check"
	JobDeploy = "deploy"
	JobExec   = "exec"
)

// Schedule is one [[schedules]] entry run by `skiff cron`.
type Schedule struct {
	Name string `json:"name"`
	// Cron is a robfig/cron spec, optionally with seconds, a descriptor
	// ("@daily", "@every 1h") and a CRON_TZ= or TZ= prefix.
	Cron string `json:"cron"`
	// Job is one of JobPrune, JobCheck, JobDeploy and JobExec.
	Job string `json:"job"`
	// Hosts are host and group names as written; empty means the app's
	// hosts for app jobs and all hosts otherwise.
	Hosts []string `json:"hosts"`
	// App is required by deploy and optional for prune and check.
	App string `json:"app,omitempty"`
	// Command is the argv that exec runs.
	Command []string `json:"command,omitempty"`
	// Tag is the image tag a deploy of an image app pulls.
	Tag string `json:"tag,omitempty"`
}

// Options adjusts how an inventory is loaded.
type Options struct {
	// Home replaces a leading "~/" in identity_files, known_hosts, source
	// and compose_file. When empty, os.UserHomeDir is asked, and only if a
	// path needs it.
	Home string
}

// Load reads and validates the inventory at path.
func Load(path string) (*Inventory, error) { return Options{}.Load(path) }

// Parse validates the inventory in data; file names it in errors and
// anchors relative source paths.
func Parse(file string, data []byte) (*Inventory, error) { return Options{}.Parse(file, data) }

// Load reads and validates the inventory at path.
func (o Options) Load(path string) (*Inventory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	return o.Parse(path, data)
}

// Parse validates the inventory in data; file names it in errors and
// anchors relative source paths. Every returned error is an *Error.
func (o Options) Parse(file string, data []byte) (*Inventory, error) {
	raw, ix, err := decode(file, data)
	if err != nil {
		return nil, err
	}
	b := &builder{
		file: file,
		home: o.Home,
		raw:  raw,
		ps:   &problems{file: file, index: ix},
	}
	inv := b.build()
	if err := b.ps.first(); err != nil {
		return nil, err
	}
	return inv, nil
}
