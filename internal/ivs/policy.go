package ivs

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"

	"github.com/openivs/openivs/internal/awsapi"
	"github.com/openivs/openivs/internal/store"
)

// PlaybackRestrictionPolicy is the API shape (also its summary shape).
type PlaybackRestrictionPolicy struct {
	Arn                           string            `json:"arn"`
	Name                          string            `json:"name"`
	AllowedCountries              []string          `json:"allowedCountries"`
	AllowedOrigins                []string          `json:"allowedOrigins"`
	EnableStrictOriginEnforcement bool              `json:"enableStrictOriginEnforcement"`
	Tags                          map[string]string `json:"tags"`
}

type policyDoc struct {
	Name                          string   `json:"name"`
	AllowedCountries              []string `json:"allowedCountries"`
	AllowedOrigins                []string `json:"allowedOrigins"`
	EnableStrictOriginEnforcement bool     `json:"enableStrictOriginEnforcement"`
}

// RestrictionPolicy is a policy as playback enforces it.
type RestrictionPolicy = policyDoc

type policySettings struct {
	Name                          *string   `json:"name"`
	AllowedCountries              *[]string `json:"allowedCountries"`
	AllowedOrigins                *[]string `json:"allowedOrigins"`
	EnableStrictOriginEnforcement *bool     `json:"enableStrictOriginEnforcement"`
}

// applyPolicy merges in into d and checks the result. quotaErr builds the
// error for a list over its quota: CreatePlaybackRestrictionPolicy answers
// ServiceQuotaExceededException, while UpdatePlaybackRestrictionPolicy has
// no such exception in its model and answers ValidationException.
func (s *Service) applyPolicy(in *policySettings, d *policyDoc, quotaErr func(string, ...any) *awsapi.Error) error {
	if in.Name != nil {
		d.Name = *in.Name
	}
	if in.AllowedCountries != nil {
		d.AllowedCountries = *in.AllowedCountries
	}
	if in.AllowedOrigins != nil {
		d.AllowedOrigins = *in.AllowedOrigins
	}
	if in.EnableStrictOriginEnforcement != nil {
		d.EnableStrictOriginEnforcement = *in.EnableStrictOriginEnforcement
	}
	if n, max := len(d.AllowedCountries), s.cfg.Quotas.RestrictionPolicyCountries; n > max {
		return quotaErr("allowedCountries: %d countries exceed the quota of %d per policy.", n, max)
	}
	if n, max := len(d.AllowedOrigins), s.cfg.Quotas.RestrictionPolicyOrigins; n > max {
		return quotaErr("allowedOrigins: %d origins exceed the quota of %d per policy.", n, max)
	}
	for i, c := range d.AllowedCountries {
		if !isISOCountry(c) {
			return awsapi.Validation("allowedCountries.%d: %q is not an ISO 3166-1 alpha-2 country code.", i+1, c)
		}
	}
	for i, o := range d.AllowedOrigins {
		if !isOrigin(o) {
			return awsapi.Validation("allowedOrigins.%d: %q is not a valid origin (scheme://host[:port], or *).", i+1, o)
		}
	}
	d.AllowedCountries = dedupe(d.AllowedCountries)
	d.AllowedOrigins = dedupe(d.AllowedOrigins)
	return nil
}

// isOrigin accepts what a browser sends in an Origin header.
func isOrigin(o string) bool {
	if o == "*" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	return (u.Path == "" || u.Path == "/") && u.RawQuery == "" && u.Fragment == "" && u.User == nil
}

func dedupe(list []string) []string {
	out := make([]string, 0, len(list))
	seen := map[string]bool{}
	for _, v := range list {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

func policyOut(r *store.Resource) (*PlaybackRestrictionPolicy, error) {
	var d policyDoc
	if err := json.Unmarshal(r.Doc, &d); err != nil {
		return nil, err
	}
	return &PlaybackRestrictionPolicy{
		Arn: r.ARN, Name: d.Name, AllowedCountries: nonNil(d.AllowedCountries),
		AllowedOrigins: nonNil(d.AllowedOrigins), EnableStrictOriginEnforcement: d.EnableStrictOriginEnforcement,
		Tags: tagsOrEmpty(r.Tags),
	}, nil
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

func (s *Service) createRestrictionPolicy(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		policySettings
		Tags map[string]string `json:"tags"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	var d policyDoc
	if err := s.applyPolicy(&in.policySettings, &d, awsapi.QuotaExceeded); err != nil {
		return nil, err
	}
	if err := validateTags(in.Tags); err != nil {
		return nil, err
	}
	doc, _ := json.Marshal(d)
	r := &store.Resource{
		ARN: s.arn(call.Account, KindRestrictionPolicy, randomID(12)), Kind: KindRestrictionPolicy,
		Account: call.Account, Name: d.Name, Tags: in.Tags, Doc: doc,
	}
	err := s.store.Insert(ctx, r, store.Quota{Max: s.cfg.Quotas.PlaybackRestrictionPolicies})
	if errors.Is(err, store.ErrQuotaExceeded) {
		return nil, awsapi.QuotaExceeded("Playback restriction policy quota of %d has been reached.", s.cfg.Quotas.PlaybackRestrictionPolicies)
	} else if err != nil {
		return nil, storeError(err)
	}
	out, err := policyOut(r)
	if err != nil {
		return nil, err
	}
	return map[string]any{"playbackRestrictionPolicy": out}, nil
}

func (s *Service) updateRestrictionPolicy(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		Arn string `json:"arn"`
		policySettings
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	if _, err := s.lookup(ctx, call, KindRestrictionPolicy, in.Arn); err != nil {
		return nil, err
	}
	r, err := s.store.Update(ctx, in.Arn, func(r *store.Resource) error {
		var d policyDoc
		if err := json.Unmarshal(r.Doc, &d); err != nil {
			return err
		}
		if err := s.applyPolicy(&in.policySettings, &d, awsapi.Validation); err != nil {
			return err
		}
		r.Doc, _ = json.Marshal(d)
		r.Name = d.Name
		return nil
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, notFound(KindRestrictionPolicy, in.Arn)
		}
		return nil, storeError(err)
	}
	out, err := policyOut(r)
	if err != nil {
		return nil, err
	}
	return map[string]any{"playbackRestrictionPolicy": out}, nil
}

func (s *Service) listRestrictionPolicies(ctx context.Context, call *awsapi.Call) (any, error) {
	var in struct {
		MaxResults *int    `json:"maxResults"`
		NextToken  *string `json:"nextToken"`
	}
	if err := call.Decode(&in); err != nil {
		return nil, err
	}
	q := store.Query{Kind: KindRestrictionPolicy, Account: call.Account}
	items, next, err := paginate(ctx, s.store, call, q, "", in.MaxResults, 100, in.NextToken)
	if err != nil {
		return nil, err
	}
	policies := make([]*PlaybackRestrictionPolicy, 0, len(items))
	for _, r := range items {
		p, err := policyOut(r)
		if err != nil {
			return nil, err
		}
		policies = append(policies, p)
	}
	return listOut("playbackRestrictionPolicies", policies, next), nil
}

// isoCountries are the officially assigned ISO 3166-1 alpha-2 codes.
const isoCountries = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ " +
	"CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR " +
	"GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP " +
	"KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ " +
	"NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW " +
	"SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ " +
	"UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW"

func isISOCountry(c string) bool {
	if len(c) != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' {
		return false
	}
	return strings.Contains(" "+isoCountries+" ", " "+c+" ")
}
