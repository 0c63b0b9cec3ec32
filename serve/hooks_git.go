package serve

import (
	"encoding/json"
	"net/http"
	"strings"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"

	"github.com/skiffdeploy/skiff/compose"
	"github.com/skiffdeploy/skiff/inventory"
)

var validTag = compose.ValidTag

// zeroSHA is the "after" of a push that deleted its branch or tag.
const zeroSHA = "0000000000000000000000000000000000000000"

// parseGitLab reads Push, Tag Push and Pipeline events (GitLab's payload types); a pipeline deploys only
// when its status is success.
func parseGitLab(h http.Header, body []byte, t *inventory.Trigger, app *inventory.App) (Event, error) {
	typ := gitlab.EventType(h.Get("X-Gitlab-Event"))
	ev := Event{Delivery: deliveryOr(h.Get("X-Gitlab-Event-UUID"), body), What: string(typ)}
	switch typ {
	case gitlab.EventTypePush, gitlab.EventTypeTagPush, gitlab.EventTypePipeline:
	case "":
		return ev, malformed("no X-Gitlab-Event header")
	default:
		ev.Ignored = "event " + string(typ) + " is not deployed (push, tag push and pipeline events are)"
		return ev, nil
	}
	parsed, err := gitlab.ParseWebhook(typ, body)
	if err != nil {
		return ev, malformed("%s: %v", typ, err)
	}
	def := ""
	switch e := parsed.(type) {
	case *gitlab.PushEvent:
		ev.Ref, ev.SHA = strings.TrimPrefix(e.Ref, "refs/heads/"), firstOf(e.CheckoutSHA, e.After)
		if e.After == zeroSHA {
			ev.Ignored = "branch " + ev.Ref + " was deleted"
		}
	case *gitlab.TagEvent:
		ev.Ref, ev.SHA = strings.TrimPrefix(e.Ref, "refs/tags/"), firstOf(e.CheckoutSHA, e.After)
		if e.After == zeroSHA {
			ev.Ignored = "tag " + ev.Ref + " was deleted"
		}
	case *gitlab.PipelineEvent:
		a := e.ObjectAttributes
		ev.Ref, ev.SHA = a.Ref, a.SHA
		if a.Status != "success" {
			ev.Ignored = "pipeline status is " + a.Status + ", not success"
		}
	}
	if ev.Ignored == "" && ev.SHA == "" {
		return ev, malformed("%s: no commit", typ)
	}
	return gitEvent(ev, t, app, def)
}

// The parts of GitHub's push, release and workflow_run payloads that a deploy needs.
type (
	githubPush struct {
		Ref     string `json:"ref"`
		After   string `json:"after"`
		Deleted bool   `json:"deleted"`
	}
	githubRelease struct {
		Action  string `json:"action"`
		Release struct {
			TagName    string `json:"tag_name"`
			Draft      bool   `json:"draft"`
			Prerelease bool   `json:"prerelease"`
		} `json:"release"`
	}
	githubWorkflowRun struct {
		Action      string `json:"action"`
		WorkflowRun struct {
			Name       string `json:"name"`
			HeadBranch string `json:"head_branch"`
			HeadSHA    string `json:"head_sha"`
			Status     string `json:"status"`
			Conclusion string `json:"conclusion"`
		} `json:"workflow_run"`
	}
)

// parseGitHub reads push, release (published) and workflow_run (completed with success) events; ping is
// answered as ignored.
func parseGitHub(h http.Header, body []byte, t *inventory.Trigger, app *inventory.App) (Event, error) {
	typ := h.Get("X-GitHub-Event")
	ev := Event{Delivery: deliveryOr(h.Get("X-GitHub-Delivery"), body), What: typ}
	def := ""
	switch typ {
	case "push":
		var p githubPush
		if err := json.Unmarshal(body, &p); err != nil {
			return ev, malformed("push: %v", err)
		}
		switch {
		case strings.HasPrefix(p.Ref, "refs/heads/"):
			ev.Ref = strings.TrimPrefix(p.Ref, "refs/heads/")
		case strings.HasPrefix(p.Ref, "refs/tags/"):
			ev.Ref = strings.TrimPrefix(p.Ref, "refs/tags/")
		default:
			return ev, malformed("push: ref %q is neither a branch nor a tag", p.Ref)
		}
		ev.SHA = p.After
		if p.Deleted || p.After == zeroSHA {
			ev.Ignored, ev.SHA = p.Ref+" was deleted", ""
		}
	case "release":
		var r githubRelease
		if err := json.Unmarshal(body, &r); err != nil {
			return ev, malformed("release: %v", err)
		}
		ev.Ref, def = r.Release.TagName, r.Release.TagName
		if r.Action != "published" || r.Release.Draft {
			ev.Ignored = "release action " + r.Action + " is not deployed (published is)"
		} else if ev.Ref == "" {
			return ev, malformed("release: no tag_name")
		}
	case "workflow_run":
		var w githubWorkflowRun
		if err := json.Unmarshal(body, &w); err != nil {
			return ev, malformed("workflow_run: %v", err)
		}
		run := w.WorkflowRun
		ev.Ref, ev.SHA = run.HeadBranch, run.HeadSHA
		if w.Action != "completed" || run.Conclusion != "success" {
			ev.Ignored = "workflow run " + w.Action + "/" + run.Conclusion + " is not deployed (completed/success is)"
		} else if ev.SHA == "" {
			return ev, malformed("workflow_run: no head_sha")
		}
	case "":
		return ev, malformed("no X-GitHub-Event header")
	default:
		ev.Ignored = "event " + typ + " is not deployed (push, release and workflow_run are)"
	}
	return gitEvent(ev, t, app, def)
}

// genericBody is what a generic trigger takes: a tag for an image app, a revision (commit or ref) for a
// source app, and an optional delivery id.
type genericBody struct {
	Tag      string `json:"tag"`
	Revision string `json:"revision"`
	ID       string `json:"id"`
}

// parseGeneric reads {"tag": …} or {"revision": …}.
func parseGeneric(h http.Header, body []byte, t *inventory.Trigger, app *inventory.App) (Event, error) {
	var g genericBody
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&g); err != nil {
		return Event{What: "generic"}, malformed("generic: %v", err)
	}
	ev := Event{Delivery: deliveryOr(firstOf(h.Get("X-Skiff-Delivery"), g.ID), body), What: "generic"}
	if app.Kind == inventory.KindImage {
		if g.Tag == "" || g.Revision != "" {
			return ev, malformed("generic: image app %s takes {\"tag\": …}", app.Name)
		}
		if !refMatches(t, g.Tag) {
			ev.Ignored = "tag " + g.Tag + " does not match " + t.Ref
			return ev, nil
		}
		ev.Tag = g.Tag
		if !validTag(ev.Tag) {
			return ev, malformed("generic: %q is not an image tag", ev.Tag)
		}
		return ev, nil
	}
	if g.Revision == "" || g.Tag != "" {
		return ev, malformed("generic: source app %s takes {\"revision\": …}", app.Name)
	}
	if validSHA(g.Revision) {
		ev.SHA = g.Revision
	} else {
		ev.Ref = g.Revision
	}
	return gitEvent(ev, t, app, "")
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
