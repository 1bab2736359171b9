package receiver

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
)

// Membership says how a declaration tells adds from removes.
type Membership string

// The membership rules of LaunchDarkly's synced-segment request parsers.
const (
	// BooleanMembership: one member array, a boolean per member (true
	// adds, false removes) at Declaration.BooleanPath.
	BooleanMembership Membership = "booleanMembership"
	// AddRemoveArrays: separate arrays of members to add and to remove.
	AddRemoveArrays Membership = "addRemoveArrays"
	// ArrayInclusion: one member array and one action for the whole batch
	// at Declaration.ActionPath: it adds when AddMatcher matches it and
	// RemoveMatcher does not, and removes otherwise.
	ArrayInclusion Membership = "arrayInclusion"
)

// Declaration is a partner's request parser, as data: JSON pointers
// (RFC 6901) into the request body, as in the partner's integration
// manifest (capability syncedSegment, requestParser). Member pointers are
// relative to a member.
type Declaration struct {
	// Integration is the integration key of the URL and the first part of
	// the segment key.
	Integration string
	// EnvironmentPath points at the environment id (a destination's
	// client_side_id or name). Required.
	EnvironmentPath string
	// CohortIDPath points at the cohort id. Required.
	CohortIDPath string
	// CohortNamePath and CohortURLPath point at the cohort's name and URL,
	// for logs; optional.
	CohortNamePath, CohortURLPath string
	// ContextKindPath points at the context kind; absent in the body (or
	// "" here) means "user".
	ContextKindPath string
	// Membership is the rule telling adds from removes.
	Membership Membership
	// MemberArrayPath points at the member array (BooleanMembership and
	// ArrayInclusion).
	MemberArrayPath string
	// AddArrayPath and RemoveArrayPath point at the arrays of
	// AddRemoveArrays.
	AddArrayPath, RemoveArrayPath string
	// MemberIDPath points at a member's id, relative to the member.
	// Required.
	MemberIDPath string
	// BooleanPath points at a member's boolean membership, relative to the
	// member (BooleanMembership).
	BooleanPath string
	// ActionPath points at the batch's action (ArrayInclusion).
	ActionPath string
	// AddMatcher is the manifest's matcher (ArrayInclusion).
	AddMatcher string
	// RemoveMatcher, when set, is checked first: an action it matches
	// removes even when AddMatcher matches it too. This is where a
	// manifest's matcher that also matches its own remove action (Tealium's
	// remove_member, Zeotap's remove_members) is corrected on purpose.
	RemoveMatcher string
}

// parser is a Declaration compiled: its pointers parsed, its matchers
// compiled.
type parser struct {
	decl                                 Declaration
	env, cohortID, cohortName, cohortURL pointer
	kind, members, adds, removes         pointer
	memberID, boolean, action            pointer
	addMatcher, removeMatcher            *regexp.Regexp
}

// compile checks d and parses its pointers and matchers.
func compile(d Declaration) (*parser, error) {
	p := &parser{decl: d}
	var errs []error
	ptr := func(dst *pointer, name, v string, required bool) {
		if v == "" {
			if required {
				errs = append(errs, fmt.Errorf("%s is required", name))
			}
			return
		}
		var err error
		if *dst, err = parsePointer(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	re := func(dst **regexp.Regexp, name, v string, required bool) {
		if v == "" {
			if required {
				errs = append(errs, fmt.Errorf("%s is required", name))
			}
			return
		}
		var err error
		if *dst, err = regexp.Compile(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	if d.Integration == "" {
		errs = append(errs, errors.New("no Integration"))
	}
	ptr(&p.env, "EnvironmentPath", d.EnvironmentPath, true)
	ptr(&p.cohortID, "CohortIDPath", d.CohortIDPath, true)
	ptr(&p.cohortName, "CohortNamePath", d.CohortNamePath, false)
	ptr(&p.cohortURL, "CohortURLPath", d.CohortURLPath, false)
	ptr(&p.kind, "ContextKindPath", d.ContextKindPath, false)
	ptr(&p.memberID, "MemberIDPath", d.MemberIDPath, true)
	switch d.Membership {
	case BooleanMembership:
		ptr(&p.members, "MemberArrayPath", d.MemberArrayPath, true)
		ptr(&p.boolean, "BooleanPath", d.BooleanPath, true)
	case AddRemoveArrays:
		ptr(&p.adds, "AddArrayPath", d.AddArrayPath, true)
		ptr(&p.removes, "RemoveArrayPath", d.RemoveArrayPath, true)
	case ArrayInclusion:
		ptr(&p.members, "MemberArrayPath", d.MemberArrayPath, true)
		ptr(&p.action, "ActionPath", d.ActionPath, true)
		re(&p.addMatcher, "AddMatcher", d.AddMatcher, true)
		re(&p.removeMatcher, "RemoveMatcher", d.RemoveMatcher, false)
	default:
		errs = append(errs, fmt.Errorf("Membership %q is not one of %s, %s, %s", d.Membership, BooleanMembership, AddRemoveArrays, ArrayInclusion))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("declaration %q: %w", d.Integration, err)
	}
	return p, nil
}

// Parsers is a set of compiled declarations by integration key.
type Parsers struct{ byKey map[string]*parser }

// NewParsers compiles decls; two declarations of one integration key are
// refused.
func NewParsers(decls ...Declaration) (*Parsers, error) {
	ps := &Parsers{byKey: make(map[string]*parser, len(decls))}
	var errs []error
	for _, d := range decls {
		p, err := compile(d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := ps.byKey[d.Integration]; dup {
			errs = append(errs, fmt.Errorf("declaration %q: declared twice", d.Integration))
			continue
		}
		ps.byKey[d.Integration] = p
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return ps, nil
}

// Integrations lists the integration keys, sorted.
func (ps *Parsers) Integrations() []string {
	keys := make([]string, 0, len(ps.byKey))
	for k := range ps.byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Builtin returns the declarations of the partners LaunchDarkly accepts
// synced segments from, with the pointers of their manifests in
// LaunchDarkly's integration framework (or, where no manifest is public,
// of the payload the partner documents).
func Builtin() []Declaration {
	// Amplitude's shape: one array, a boolean per member, the cohort named
	// by the first member.
	boolean := func(key, env, kind, members, id, cohortID, cohortName, cohortURL, value string) Declaration {
		return Declaration{
			Integration: key, EnvironmentPath: env, ContextKindPath: kind,
			CohortIDPath: cohortID, CohortNamePath: cohortName, CohortURLPath: cohortURL,
			Membership: BooleanMembership, MemberArrayPath: members, MemberIDPath: id, BooleanPath: value,
		}
	}
	arrays := func(key, env, kind, cohortID, cohortName, cohortURL, add, remove string) Declaration {
		return Declaration{
			Integration: key, EnvironmentPath: env, ContextKindPath: kind,
			CohortIDPath: cohortID, CohortNamePath: cohortName, CohortURLPath: cohortURL,
			Membership: AddRemoveArrays, AddArrayPath: add, RemoveArrayPath: remove, MemberIDPath: "/id",
		}
	}
	return []Declaration{
		boolean("amplitude", "/environmentId", "", "/batch", "/userId",
			"/batch/0/cohortId", "/batch/0/cohortName", "/batch/0/cohortUrl", "/value"),
		boolean("segment", "/environmentId", "/contextKind", "/batch", "/userId",
			"/batch/0/cohortId", "/batch/0/cohortName", "", "/value"),
		boolean("census", "/environment_id", "/context_kind", "/batch", "/user_id",
			"/batch/0/cohort_id", "/batch/0/cohort_name", "", "/value"),
		arrays("rudderstack", "/environmentId", "/contextKind", "/cohortId", "/cohortName", "/cohortUrl",
			"/listData/add", "/listData/remove"),
		arrays("heap", "/parameters/environment_id", "", "/heap/data/segment/id", "/heap/data/segment/name", "",
			"/heap/data/add", "/heap/data/remove"),
		arrays("fulcrum", "/environmentId", "/contextKind", "/cohortId", "/cohortName", "/cohortUrl",
			"/included/add", "/included/remove"),
		arrays("sumatra", "/environmentId", "/contextKind", "/cohortId", "/cohortName", "/cohortUrl",
			"/included/add", "/included/remove"),
		{
			Integration: "hightouch", EnvironmentPath: "/environmentId", ContextKindPath: "/contextKind",
			CohortIDPath: "/cohortId", CohortNamePath: "/cohortName",
			Membership: ArrayInclusion, MemberArrayPath: "/members", MemberIDPath: "/integration_distinct_id",
			ActionPath: "/action", AddMatcher: "^add$",
		},
		{
			// The manifest's matcher also matches remove_member: taken
			// literally a removal would add. RemoveMatcher makes it remove.
			Integration: "tealium", EnvironmentPath: "/parameters/tealium_project_id",
			CohortIDPath: "/parameters/tealium_cohort_id", CohortNamePath: "/parameters/tealium_cohort_name",
			Membership: ArrayInclusion, MemberArrayPath: "/parameters/members", MemberIDPath: "/member_id",
			ActionPath: "/action", AddMatcher: "^(add_member|remove_member)$", RemoveMatcher: "^remove_member$",
		},
		{
			// Same for Zeotap's later matcher, which matches remove_members.
			Integration: "zeotap", EnvironmentPath: "/parameters/integration_project_id",
			CohortIDPath: "/parameters/integration_cohort_id", CohortNamePath: "/parameters/integration_cohort_name",
			Membership: ArrayInclusion, MemberArrayPath: "/parameters/members", MemberIDPath: "/integration_distinct_id",
			ActionPath: "/action", AddMatcher: "^(members|add_members|remove_members)$", RemoveMatcher: "^remove_members$",
		},
	}
}
