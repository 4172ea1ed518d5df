package awsapi

import (
	"context"
	"crypto/rand"
	"errors"
	"maps"
	"slices"
	"strings"

	"github.com/openivs/openivs/internal/store"
)

// ARN is a parsed resource ARN of the services here:
// arn:aws:<service>:<region>:<account>:<kind>/<id>.
type ARN struct {
	Region, Account, Kind, ID string
}

// ParseARN parses an ARN of service ("ivs", "ivschat"). It fails for
// another service or partition and for an ARN missing a part.
func ParseARN(service, s string) (ARN, bool) {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] != "aws" || parts[2] != service {
		return ARN{}, false
	}
	kind, id, ok := strings.Cut(parts[5], "/")
	if !ok || kind == "" || id == "" || parts[3] == "" || parts[4] == "" {
		return ARN{}, false
	}
	return ARN{Region: parts[3], Account: parts[4], Kind: kind, ID: id}, true
}

// Resources is one service's view of the resources it keeps in a store:
// their ARNs in its region, look-ups confined to the caller's account, and
// the tag operations, which IVS and IVS Chat define alike.
type Resources struct {
	Store   store.Store
	Service string // the ARN's service: "ivs", "ivschat"
	Region  string
	// NotFound is the service's ResourceNotFoundException for a resource
	// of a kind.
	NotFound func(kind, arn string) *Error
	// Taggable are the kinds the tag operations reach.
	Taggable []string
}

// ARN builds the ARN of a resource of an account in the service's region.
func (r *Resources) ARN(account, kind, id string) string {
	return "arn:aws:" + r.Service + ":" + r.Region + ":" + account + ":" + kind + "/" + id
}

// Lookup reads a resource of the caller's account, answering NotFound for
// anything else (another account or region, another kind, or missing).
func (r *Resources) Lookup(ctx context.Context, account, kind, arn string) (*store.Resource, error) {
	a, ok := ParseARN(r.Service, arn)
	if !ok || a.Kind != kind || a.Region != r.Region || a.Account != account {
		return nil, r.NotFound(kind, arn)
	}
	res, err := r.Store.Get(ctx, arn)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, r.NotFound(kind, arn)
		}
		return nil, err
	}
	if res.Kind != kind || res.Account != account {
		return nil, r.NotFound(kind, arn)
	}
	return res, nil
}

// StoreError maps the store errors that the services answer alike and a
// handler did not handle itself: a missing parent or reference is
// notFound for that ARN (of service), a missing resource a generic
// ResourceNotFoundException. Other errors are returned unchanged.
func StoreError(err error, service string, notFound func(kind, arn string) *Error) error {
	var missing *store.MissingError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &missing):
		a, _ := ParseARN(service, missing.ARN)
		return notFound(a.Kind, missing.ARN)
	case errors.Is(err, store.ErrNotFound):
		return NotFound("The resource was not found.")
	}
	return err
}

// maxTags is AWS's per-resource tag limit.
const maxTags = 50

// ValidateTags applies the AWS tagging rules the models cannot express
// (lengths, characters and the 50 tags of one request are model checks).
func ValidateTags(tags map[string]string) error {
	if len(tags) > maxTags {
		return FieldValidation("tags", "at most %d tags are allowed per resource.", maxTags)
	}
	for k := range tags {
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return FieldValidation("tags", "the aws: prefix is reserved for AWS use (key %q).", k)
		}
	}
	return nil
}

// TagsOrEmpty is a resource's tags as the APIs render them: {} for none.
func TagsOrEmpty(t map[string]string) map[string]string {
	if t == nil {
		return map[string]string{}
	}
	return t
}

// taggable resolves a tag route's ARN to one of the caller's resources of
// a taggable kind.
func (r *Resources) taggable(ctx context.Context, account, arn string) (*store.Resource, error) {
	a, ok := ParseARN(r.Service, arn)
	if !ok || !slices.Contains(r.Taggable, a.Kind) {
		id := arn
		if ok {
			id = a.ID
		}
		// resourceId is IVS Chat's member; IVS's model drops it.
		return nil, &Error{Code: CodeNotFound, Message: "Resource " + arn + " not found.", Fields: map[string]any{"resourceId": id}}
	}
	return r.Lookup(ctx, account, a.Kind, arn)
}

// retag applies change to the resource a tag route names.
func (r *Resources) retag(ctx context.Context, call *Call, arn string, change func(res *store.Resource) error) error {
	res, err := r.taggable(ctx, call.Account, arn)
	if err != nil {
		return err
	}
	_, err = r.Store.Update(ctx, res.ARN, change)
	if errors.Is(err, store.ErrNotFound) {
		return r.NotFound(res.Kind, arn) // deleted since the look-up
	}
	return err
}

// TagResource is the TagResource operation: it adds or overwrites tags.
func (r *Resources) TagResource(ctx context.Context, call *Call) (any, error) {
	var in struct {
		ResourceArn string            `json:"resourceArn"`
		Tags        map[string]string `json:"tags"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	if err := ValidateTags(in.Tags); err != nil {
		return nil, err
	}
	err := r.retag(ctx, call, in.ResourceArn, func(res *store.Resource) error {
		merged := make(map[string]string, len(res.Tags)+len(in.Tags))
		maps.Copy(merged, res.Tags)
		maps.Copy(merged, in.Tags)
		if len(merged) > maxTags {
			return FieldValidation("tags", "the resource would have %d tags; at most %d are allowed.", len(merged), maxTags)
		}
		res.Tags = merged
		return nil
	})
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// UntagResource is the UntagResource operation: it removes tags by key;
// keys the resource does not have are no error.
func (r *Resources) UntagResource(ctx context.Context, call *Call) (any, error) {
	var in struct {
		ResourceArn string   `json:"resourceArn"`
		TagKeys     []string `json:"tagKeys"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	err := r.retag(ctx, call, in.ResourceArn, func(res *store.Resource) error {
		for _, k := range in.TagKeys {
			delete(res.Tags, k)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

// ListTagsForResource is the ListTagsForResource operation.
func (r *Resources) ListTagsForResource(ctx context.Context, call *Call) (any, error) {
	var in struct {
		ResourceArn string `json:"resourceArn"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	res, err := r.taggable(ctx, call.Account, in.ResourceArn)
	if err != nil {
		return nil, err
	}
	return map[string]any{"tags": TagsOrEmpty(res.Tags)}, nil
}

// Page is what one List call asks for.
type Page struct {
	// Filters identifies the listing (its filters, its parent) so that a
	// token cannot be replayed on another.
	Filters    string
	MaxResults *int
	DefaultMax int // the page size when MaxResults is nil
	NextToken  *string
	// Keep, when set, drops the resources it rejects (a filter the store
	// cannot apply). The store is then read in batches until the page is
	// full, so a selective filter costs reads but never skips a match.
	Keep func(*store.Resource) bool
}

// Paginate lists one page of q and returns the token of the next page when
// more remain (nil on the last page).
func Paginate(ctx context.Context, st store.Store, call *Call, q store.Query, p Page) ([]*store.Resource, *string, error) {
	token := ""
	if p.NextToken != nil {
		token = *p.NextToken
	}
	cursor, err := call.PageCursor(p.Filters, token)
	if err != nil {
		return nil, nil, err
	}
	limit := p.DefaultMax
	if p.MaxResults != nil {
		limit = *p.MaxResults
	}
	var page []*store.Resource
	batch := limit + 1
	if p.Keep != nil && batch < 500 {
		batch = 500
	}
	for {
		q.AfterSeq, q.Limit = cursor, batch
		items, err := st.List(ctx, q)
		if err != nil {
			return nil, nil, err
		}
		for _, r := range items {
			if p.Keep == nil || p.Keep(r) {
				page = append(page, r)
			}
			if len(page) > limit {
				page = page[:limit]
				next := call.PageToken(p.Filters, page[limit-1].Seq)
				return page, &next, nil
			}
		}
		if len(items) < batch {
			return page, nil, nil
		}
		cursor = items[len(items)-1].Seq
	}
}

// ListOutput is a List operation's response: the items under key, and
// nextToken unless this is the last page.
func ListOutput(key string, items any, next *string) map[string]any {
	out := map[string]any{key: items}
	if next != nil {
		out["nextToken"] = *next
	}
	return out
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// RandomID returns n random alphanumeric characters, as IVS and IVS Chat
// resource ids (12 of them) are.
func RandomID(n int) string {
	out := make([]byte, 0, n)
	var buf [32]byte
	for len(out) < n {
		_, _ = rand.Read(buf[:]) // never fails (crypto/rand contract)
		for _, b := range buf {
			// 248 = 4*62: rejecting larger bytes keeps every character equally likely.
			if b < 248 && len(out) < n {
				out = append(out, idAlphabet[b%62])
			}
		}
	}
	return string(out)
}
