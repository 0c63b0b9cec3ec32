package serve

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/skiffdeploy/skiff/inventory"
)

// registryEnvelope is a Docker distribution notification: one or more events.
type registryEnvelope struct {
	Events []registryEvent `json:"events"`
}

// registryEvent is one event of an envelope, with the fields a deploy needs.
type registryEvent struct {
	ID     string `json:"id"`
	Action string `json:"action"`
	Target struct {
		MediaType  string `json:"mediaType"`
		Digest     string `json:"digest"`
		Repository string `json:"repository"`
		Tag        string `json:"tag"`
	} `json:"target"`
	Request struct {
		Host string `json:"host"`
	} `json:"request"`
}

// parseRegistry picks, from an envelope, the last manifest push with a tag to the app's image repository.
// Blob pushes, pulls and other repositories are ignored.
func parseRegistry(_ http.Header, body []byte, t *inventory.Trigger, app *inventory.App) (Event, error) {
	var env registryEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return Event{What: "registry"}, malformed("registry notification: %v", err)
	}
	if len(env.Events) == 0 {
		return Event{What: "registry"}, malformed("registry notification: no events")
	}
	repo := imageRepository(app.Image)
	ev := Event{What: "registry", Ignored: "no manifest push to " + repo}
	for _, e := range env.Events {
		if e.Action != "push" || !strings.Contains(e.Target.MediaType, "manifest") && !strings.Contains(e.Target.MediaType, "image.index") {
			continue
		}
		if e.Target.Repository != repo {
			ev.Ignored = "push to " + e.Target.Repository + ", not " + repo
			continue
		}
		if e.Target.Tag == "" {
			ev.Ignored = "manifest push without a tag"
			continue
		}
		if e.ID == "" {
			return ev, malformed("registry notification: event without id")
		}
		ev.What = "push of " + repo + ":" + e.Target.Tag
		if !refMatches(t, e.Target.Tag) {
			ev.Ignored = "tag " + e.Target.Tag + " does not match " + t.Ref
			continue
		}
		if !validTag(e.Target.Tag) {
			return ev, malformed("registry notification: %q is not an image tag", e.Target.Tag)
		}
		ev.Ignored, ev.Tag, ev.Delivery = "", e.Target.Tag, e.ID
	}
	if ev.Delivery == "" {
		ev.Delivery = bodyDelivery(body)
	}
	return ev, nil
}

// imageRepository is the repository part of an image reference, without its registry host: what the
// registry calls target.repository.
func imageRepository(image string) string {
	first, rest, ok := strings.Cut(image, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return rest
	}
	return image
}
