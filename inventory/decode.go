package inventory

import (
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// rawValue captures a TOML value of any type. Leaves are decoded into it
// rather than into Go types so that type errors are found by this package,
// in a fixed order and with the key's line, instead of by the TOML library
// in map iteration order.
type rawValue struct {
	v   any
	set bool
}

// UnmarshalTOML stores the value as the TOML library parsed it.
func (r *rawValue) UnmarshalTOML(v any) error {
	r.v, r.set = v, true
	return nil
}

// The raw* types mirror the file. Tables below the top level are
// toml.Primitive so that their type can be checked before they are decoded.
type (
	rawFile struct {
		Defaults   toml.Primitive `toml:"defaults"`
		Hosts      toml.Primitive `toml:"hosts"`
		Registries toml.Primitive `toml:"registries"`
		Apps       toml.Primitive `toml:"apps"`
		Schedules  toml.Primitive `toml:"schedules"`
		Serve      toml.Primitive `toml:"serve"`
		Triggers   toml.Primitive `toml:"triggers"`
		Notify     toml.Primitive `toml:"notify"`
	}
	rawDefaults struct {
		User           rawValue `toml:"user"`
		Port           rawValue `toml:"port"`
		IdentityFiles  rawValue `toml:"identity_files"`
		KnownHosts     rawValue `toml:"known_hosts"`
		ConnectTimeout rawValue `toml:"connect_timeout"`
		Keepalive      rawValue `toml:"keepalive"`
		Jump           rawValue `toml:"jump"`
	}
	rawHost struct {
		Address        rawValue `toml:"address"`
		User           rawValue `toml:"user"`
		Port           rawValue `toml:"port"`
		IdentityFiles  rawValue `toml:"identity_files"`
		KnownHosts     rawValue `toml:"known_hosts"`
		ConnectTimeout rawValue `toml:"connect_timeout"`
		Keepalive      rawValue `toml:"keepalive"`
		Jump           rawValue `toml:"jump"`
		Groups         rawValue `toml:"groups"`
	}
	rawRegistry struct {
		Server      rawValue `toml:"server"`
		Username    rawValue `toml:"username"`
		PasswordEnv rawValue `toml:"password_env"`
	}
	rawApp struct {
		Hosts        rawValue       `toml:"hosts"`
		Path         rawValue       `toml:"path"`
		Source       rawValue       `toml:"source"`
		Exclude      rawValue       `toml:"exclude"`
		Shared       rawValue       `toml:"shared"`
		KeepReleases rawValue       `toml:"keep_releases"`
		ComposeFile  rawValue       `toml:"compose_file"`
		Service      rawValue       `toml:"service"`
		Image        rawValue       `toml:"image"`
		Registry     rawValue       `toml:"registry"`
		KeepImages   rawValue       `toml:"keep_images"`
		Timeout      rawValue       `toml:"timeout"`
		Hooks        toml.Primitive `toml:"hooks"`
		Supervisor   toml.Primitive `toml:"supervisor"`
		Check        toml.Primitive `toml:"check"`
		Rollout      toml.Primitive `toml:"rollout"`
		Prune        toml.Primitive `toml:"prune"`
		Env          toml.Primitive `toml:"env"`
		Builds       toml.Primitive `toml:"builds"`

		hooks      rawHooks
		supervisor rawSupervisor
		check      rawCheck
		rollout    rawRollout
		prune      rawPrune
		env        rawEnv
		envSet     bool
		builds     []*rawBuild
	}
	rawEnv struct {
		File      rawValue `toml:"file"`
		Values    rawValue `toml:"values"`
		SecretEnv rawValue `toml:"secret_env"`
	}
	rawNotify struct {
		Command         rawValue `toml:"command"`
		URL             rawValue `toml:"url"`
		SecretEnv       rawValue `toml:"secret_env"`
		SlackWebhookEnv rawValue `toml:"slack_webhook_env"`
		On              rawValue `toml:"on"`
	}
	rawBuild struct {
		Name   rawValue `toml:"name"`
		Path   rawValue `toml:"path"`
		Inputs rawValue `toml:"inputs"`
		Run    rawValue `toml:"run"`
	}
	rawHooks struct {
		BeforeSwitch rawValue `toml:"before_switch"`
		AfterSwitch  rawValue `toml:"after_switch"`
	}
	rawSupervisor struct {
		URL         rawValue `toml:"url"`
		Programs    rawValue `toml:"programs"`
		Username    rawValue `toml:"username"`
		PasswordEnv rawValue `toml:"password_env"`
	}
	rawCheck struct {
		Ports   rawValue `toml:"ports"`
		HTTP    rawValue `toml:"http"`
		Timeout rawValue `toml:"timeout"`
	}
	rawRollout struct {
		Parallel rawValue `toml:"parallel"`
		Batch    rawValue `toml:"batch"`
		MaxFail  rawValue `toml:"max_fail"`
	}
	rawPrune struct {
		MinAge rawValue `toml:"min_age"`
	}
	rawSchedule struct {
		Name    rawValue `toml:"name"`
		Cron    rawValue `toml:"cron"`
		Job     rawValue `toml:"job"`
		Hosts   rawValue `toml:"hosts"`
		App     rawValue `toml:"app"`
		Command rawValue `toml:"command"`
		Tag     rawValue `toml:"tag"`
	}
)

// rawInventory is the whole file decoded into raw values.
type rawInventory struct {
	defaults   rawDefaults
	hosts      map[string]*rawHost
	registries map[string]*rawRegistry
	apps       map[string]*rawApp
	schedules  []*rawSchedule
	serve      *rawServe
	triggers   []*rawTrigger
	notify     []*rawNotify
	index      *keyIndex
}

// decoder walks the tables of a parsed file in a fixed order.
type decoder struct {
	md toml.MetaData
	ps *problems
}

// decode parses data, checks the shape of its tables and rejects unknown
// keys. Errors are *Error.
func decode(file string, data []byte) (*rawInventory, *keyIndex, error) {
	var top rawFile
	md, err := toml.Decode(string(data), &top)
	if err != nil {
		return nil, nil, errorFromParse(file, err)
	}
	ix := indexKeys(string(data))
	d := &decoder{md: md, ps: &problems{file: file, index: ix}}
	raw := &rawInventory{
		hosts:      map[string]*rawHost{},
		registries: map[string]*rawRegistry{},
		apps:       map[string]*rawApp{},
		index:      ix,
	}
	d.table(top.Defaults, toml.Key{"defaults"}, &raw.defaults)
	for name, p := range d.named(top.Hosts, "hosts") {
		h := &rawHost{}
		if d.table(p, toml.Key{"hosts", name}, h) {
			raw.hosts[name] = h
		}
	}
	for name, p := range d.named(top.Registries, "registries") {
		r := &rawRegistry{}
		if d.table(p, toml.Key{"registries", name}, r) {
			raw.registries[name] = r
		}
	}
	for name, p := range d.named(top.Apps, "apps") {
		a := &rawApp{}
		k := toml.Key{"apps", name}
		if d.table(p, k, a) {
			d.table(a.Hooks, append(k[:2:2], "hooks"), &a.hooks)
			d.table(a.Supervisor, append(k[:2:2], "supervisor"), &a.supervisor)
			d.table(a.Check, append(k[:2:2], "check"), &a.check)
			d.table(a.Rollout, append(k[:2:2], "rollout"), &a.rollout)
			d.table(a.Prune, append(k[:2:2], "prune"), &a.prune)
			a.envSet = d.table(a.Env, append(k[:2:2], "env"), &a.env)
			a.builds = decodeArray[rawBuild](d, a.Builds, append(k[:2:2], "builds"))
			raw.apps[name] = a
		}
	}
	raw.schedules = decodeArray[rawSchedule](d, top.Schedules, toml.Key{"schedules"})
	raw.serve, raw.triggers = d.serve(top.Serve, top.Triggers)
	raw.notify = decodeArray[rawNotify](d, top.Notify, toml.Key{"notify"})
	if err := d.ps.first(); err != nil {
		return nil, nil, err
	}
	if err := d.unknownKey(file, ix); err != nil {
		return nil, nil, err
	}
	return raw, ix, nil
}

// table decodes the table at key into v after checking that it is one. It
// reports whether v was decoded.
func (d *decoder) table(p toml.Primitive, key toml.Key, v any) bool {
	if !d.md.IsDefined(key...) {
		return false
	}
	path := newPath(key...)
	if t := d.md.Type(key...); t != "" && t != "Hash" {
		d.ps.add(path, "must be a table, not %s", metaTypeName(t))
		return false
	}
	if err := d.md.PrimitiveDecode(p, v); err != nil {
		d.ps.add(path, "must be a table")
		return false
	}
	return true
}

// named decodes a table of named tables, such as [hosts], into its entries
// and yields them sorted by name.
func (d *decoder) named(p toml.Primitive, key string) func(func(string, toml.Primitive) bool) {
	var m map[string]toml.Primitive
	if !d.table(p, toml.Key{key}, &m) {
		m = nil
	}
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	return func(yield func(string, toml.Primitive) bool) {
		for _, name := range names {
			if !yield(name, m[name]) {
				return
			}
		}
	}
}

// decodeArray decodes the array of tables ([[key]]) at key into one T per element.
func decodeArray[T any](d *decoder, p toml.Primitive, key toml.Key) []*T {
	if !d.md.IsDefined(key...) {
		return nil
	}
	path := newPath(key...)
	if t := d.md.Type(key...); t != "ArrayHash" && t != "Array" {
		d.ps.add(path, "must be an array of tables ([[%s]]), not %s", path, metaTypeName(t))
		return nil
	}
	var elems []toml.Primitive
	if err := d.md.PrimitiveDecode(p, &elems); err != nil {
		d.ps.add(path, "must be an array of tables ([[%s]])", path)
		return nil
	}
	out := make([]*T, 0, len(elems))
	for i, e := range elems {
		v := new(T)
		if err := d.md.PrimitiveDecode(e, v); err != nil {
			d.ps.add(path.elem(i), "must be a table")
			continue
		}
		out = append(out, v)
	}
	return out
}

// unknownKey returns an error for the first key, in file order, that no
// field took. The TOML library matches field names without regard to case;
// inventory keys are lower case, so other spellings are unknown too.
func (d *decoder) unknownKey(file string, ix *keyIndex) error {
	undecoded := map[string]bool{}
	for _, k := range d.md.Undecoded() {
		undecoded[k.String()] = true
	}
	seen := map[string]int{}
	for _, k := range d.md.Keys() {
		s := k.String()
		n := seen[s]
		seen[s]++
		if !undecoded[s] && lowerFields(k) || envValueKey(k) {
			continue
		}
		e := &Error{File: file, Key: s, Msg: "unknown key"}
		if entry, ok := ix.occurrence(s, n); ok {
			e.Key, e.Line = entry.indexed, entry.line
		}
		return e
	}
	return nil
}

// envValueKey reports whether k is a key inside an app's env.values table: those are the user's variable
// names, decoded with the table as one value.
func envValueKey(k toml.Key) bool {
	return len(k) == 5 && k[0] == "apps" && k[2] == "env" && k[3] == "values"
}

// lowerFields reports whether the parts of k that name fields, as opposed
// to hosts, apps and registries, are free of upper case letters.
func lowerFields(k toml.Key) bool {
	for i, part := range k {
		if i == 1 && (k[0] == "hosts" || k[0] == "apps" || k[0] == "registries") {
			continue
		}
		if strings.ToLower(part) != part {
			return false
		}
	}
	return true
}

// metaTypeName turns a toml.MetaData type name into words.
func metaTypeName(t string) string {
	switch t {
	case "Integer":
		return "an integer"
	case "Float":
		return "a float"
	case "String":
		return "a string"
	case "Bool":
		return "a boolean"
	case "Array":
		return "an array"
	case "ArrayHash":
		return "an array of tables"
	case "Hash":
		return "a table"
	case "":
		return "a value of unknown type"
	}
	return "a date/time"
}

// tomlTypeName names the TOML type of a decoded value in words.
func tomlTypeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date/time"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	}
	return "a value of unknown type"
}
