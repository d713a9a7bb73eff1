package graphql

import (
	"slices"
	"strings"

	"github.com/latchkey/latchkey"
)

// This file turns Hasura-style where/order_by arguments into the root
// Filter structs. A where argument is flattened into a list of conditions
// that must all hold (_and intersects). Conditions a Filter can express are
// pushed down to the service. The rest are checked in memory only when the
// Filter names its rows by id (byIDs), so that the service returns just
// those rows; otherwise they are refused (see page.go).

// op is a comparison operator.
type op int

const (
	opEq op = iota
	opNeq
	opIn
	opNin
)

// cond is one condition on one field.
type cond struct {
	field  string
	op     op
	values []string // one value for opEq and opNeq
	fold   bool     // compare case-insensitively (uuids)
}

// String describes c for error messages, e.g. "slug _neq".
func (c cond) String() string {
	return c.field + " " + [...]string{opEq: "_eq", opNeq: "_neq", opIn: "_in", opNin: "_nin"}[c.op]
}

// match reports whether v satisfies c.
func (c cond) match(v string) bool {
	in := false
	for _, w := range c.values {
		if v == w || c.fold && strings.EqualFold(v, w) {
			in = true
			break
		}
	}
	if c.op == opNeq || c.op == opNin {
		return !in
	}
	return in
}

// comparisonConds returns the conditions of one comparison expression. A
// null operator is no condition (Hasura semantics: `_eq: null` is ignored).
func comparisonConds(field string, fold bool, eq, neq *string, in, nin []string) []cond {
	var cs []cond
	if eq != nil {
		cs = append(cs, cond{field: field, op: opEq, values: []string{*eq}, fold: fold})
	}
	if neq != nil {
		cs = append(cs, cond{field: field, op: opNeq, values: []string{*neq}, fold: fold})
	}
	if in != nil {
		cs = append(cs, cond{field: field, op: opIn, values: in, fold: fold})
	}
	if nin != nil {
		cs = append(cs, cond{field: field, op: opNin, values: nin, fold: fold})
	}
	return cs
}

func uuidConds(field string, e *UUIDComparisonExp) []cond {
	if e == nil {
		return nil
	}
	return comparisonConds(field, true, e.Eq, e.Neq, e.In, e.Nin)
}

func stringConds(field string, e *StringComparisonExp) []cond {
	if e == nil {
		return nil
	}
	return comparisonConds(field, false, e.Eq, e.Neq, e.In, e.Nin)
}

// checkBoolExp rejects the boolean operators Latchkey does not implement.
func checkBoolExp(typeName string, or, not bool) error {
	if or {
		return latchkey.Errorf(latchkey.EINVALID, "%s: _or is not supported; send one query per alternative.", typeName)
	}
	if not {
		return latchkey.Errorf(latchkey.EINVALID, "%s: _not is not supported; use _neq or _nin.", typeName)
	}
	return nil
}

// boolExp is the shape shared by the where types: T is the pointer type
// itself.
type boolExp[T any] interface {
	comparable
	and() []T
	or() []T
	not() T
}

func (w *TenantBoolExp) and() []*TenantBoolExp                 { return w.And }
func (w *TenantBoolExp) or() []*TenantBoolExp                  { return w.Or }
func (w *TenantBoolExp) not() *TenantBoolExp                   { return w.Not }
func (w *AuthAPIKeyBoolExp) and() []*AuthAPIKeyBoolExp         { return w.And }
func (w *AuthAPIKeyBoolExp) or() []*AuthAPIKeyBoolExp          { return w.Or }
func (w *AuthAPIKeyBoolExp) not() *AuthAPIKeyBoolExp           { return w.Not }
func (w *ServiceAccountBoolExp) and() []*ServiceAccountBoolExp { return w.And }
func (w *ServiceAccountBoolExp) or() []*ServiceAccountBoolExp  { return w.Or }
func (w *ServiceAccountBoolExp) not() *ServiceAccountBoolExp   { return w.Not }
func (w *MembershipBoolExp) and() []*MembershipBoolExp         { return w.And }
func (w *MembershipBoolExp) or() []*MembershipBoolExp          { return w.Or }
func (w *MembershipBoolExp) not() *MembershipBoolExp           { return w.Not }

// whereConds flattens where into the conditions of its _and (recursively),
// followed by those fields returns for its own columns. typeName names
// where's GraphQL type in the error for _or and _not.
func whereConds[T boolExp[T]](typeName string, where T, fields func(T) []cond) ([]cond, error) {
	var zero T
	if where == zero {
		return nil, nil
	}
	if err := checkBoolExp(typeName, where.or() != nil, where.not() != zero); err != nil {
		return nil, err
	}
	var cs []cond
	for _, sub := range where.and() {
		c, err := whereConds(typeName, sub, fields)
		if err != nil {
			return nil, err
		}
		cs = append(cs, c...)
	}
	return append(cs, fields(where)...), nil
}

// pushRule moves the conditions on field with operator op into a store
// filter through set, which takes the condition's values and reports false
// when its filter field is already set.
type pushRule struct {
	field string
	op    op
	set   func(values []string) bool
}

// pushDown moves each condition into the store filter with the first rule
// that takes it, and returns the conditions none took.
func pushDown(cs []cond, rules ...pushRule) []cond {
	var rest []cond
next:
	for _, c := range cs {
		for _, r := range rules {
			if c.field == r.field && c.op == r.op && r.set(c.values) {
				continue next
			}
		}
		rest = append(rest, c)
	}
	return rest
}

// setOne is a pushRule setter that stores the value of an _eq condition in
// *dst, unless *dst is already set.
func setOne[S ~string](dst **S) func([]string) bool {
	return func(values []string) bool {
		if *dst != nil {
			return false
		}
		*dst = ptr(S(values[0]))
		return true
	}
}

// setAll is a pushRule setter that stores the values of an _eq or _in
// condition in *dst, unless *dst is already set.
func setAll[S ~string](dst *[]S) func([]string) bool {
	return func(values []string) bool {
		if *dst != nil {
			return false
		}
		*dst = make([]S, len(values))
		for i, v := range values {
			(*dst)[i] = S(v)
		}
		return true
	}
}

func tenantField(t *latchkey.Tenant, field string) string {
	switch field {
	case "id":
		return t.ID
	case "slug":
		return t.Slug
	case "name":
		return t.Name
	}
	return ""
}

// tenantFilter builds a TenantFilter from where and order_by, and returns
// the conditions left to check in memory.
func tenantFilter(where *TenantBoolExp, orderBy []*TenantOrderBy) (latchkey.TenantFilter, []cond, error) {
	var f latchkey.TenantFilter
	cs, err := whereConds("tenant_bool_exp", where, func(w *TenantBoolExp) []cond {
		return slices.Concat(uuidConds("id", w.ID), stringConds("slug", w.Slug), stringConds("name", w.Name))
	})
	if err != nil {
		return f, nil, err
	}
	rest := pushDown(cs,
		pushRule{"id", opEq, setOne(&f.ID)},
		pushRule{"id", opIn, setAll(&f.IDs)},
		pushRule{"slug", opEq, setOne(&f.Slug)},
		pushRule{"name", opEq, setOne(&f.Name)})
	for _, o := range orderBy {
		if o == nil {
			continue
		}
		f.OrderBy = appendSort(f.OrderBy, "id", o.ID)
		f.OrderBy = appendSort(f.OrderBy, "slug", o.Slug)
		f.OrderBy = appendSort(f.OrderBy, "name", o.Name)
		f.OrderBy = appendSort(f.OrderBy, "created_at", o.CreatedAt)
	}
	if len(rest) > 0 && !byIDs(f.ID, f.IDs) {
		return f, nil, unsupportedConds("tenant", rest, "id (_eq, _in), slug (_eq) and name (_eq)")
	}
	return f, rest, nil
}

func apiKeyField(k *latchkey.APIKey, field string) string {
	switch field {
	case "id":
		return k.ID
	case "name":
		return k.Name
	case "user_id":
		return k.UserID
	case "default_tenant_id":
		return k.DefaultTenantID
	}
	return ""
}

// apiKeyFilter builds an APIKeyFilter from where and order_by, and returns
// the conditions left to check in memory.
func apiKeyFilter(where *AuthAPIKeyBoolExp, orderBy []*AuthAPIKeyOrderBy) (latchkey.APIKeyFilter, []cond, error) {
	var f latchkey.APIKeyFilter
	cs, err := whereConds("auth_api_key_bool_exp", where, func(w *AuthAPIKeyBoolExp) []cond {
		return slices.Concat(uuidConds("id", w.ID), stringConds("name", w.Name),
			uuidConds("user_id", w.UserID), uuidConds("default_tenant_id", w.DefaultTenantID))
	})
	if err != nil {
		return f, nil, err
	}
	rest := pushDown(cs,
		pushRule{"id", opEq, setOne(&f.ID)},
		pushRule{"id", opIn, setAll(&f.IDs)},
		pushRule{"user_id", opEq, setOne(&f.UserID)},
		pushRule{"default_tenant_id", opEq, setOne(&f.TenantID)},
		pushRule{"name", opEq, setOne(&f.Name)})
	for _, o := range orderBy {
		if o == nil {
			continue
		}
		f.OrderBy = appendSort(f.OrderBy, "created_at", o.CreatedAt)
		f.OrderBy = appendSort(f.OrderBy, "name", o.Name)
		f.OrderBy = appendSort(f.OrderBy, "expires_at", o.ExpiresAt)
	}
	if len(rest) > 0 && !byIDs(f.ID, f.IDs) {
		return f, nil, unsupportedConds("auth_api_key", rest, "id (_eq, _in), name (_eq), user_id (_eq) and default_tenant_id (_eq)")
	}
	return f, rest, nil
}

func serviceAccountField(sa *latchkey.ServiceAccount, field string) string {
	switch field {
	case "id":
		return sa.ID
	case "tenant_id":
		return sa.TenantID
	case "name":
		return sa.Name
	}
	return ""
}

// serviceAccountFilter builds a ServiceAccountFilter from where, and
// returns the conditions left to check in memory.
func serviceAccountFilter(where *ServiceAccountBoolExp) (latchkey.ServiceAccountFilter, []cond, error) {
	var f latchkey.ServiceAccountFilter
	cs, err := whereConds("service_account_bool_exp", where, func(w *ServiceAccountBoolExp) []cond {
		return slices.Concat(uuidConds("id", w.ID), uuidConds("tenant_id", w.TenantID), stringConds("name", w.Name))
	})
	if err != nil {
		return f, nil, err
	}
	rest := pushDown(cs,
		pushRule{"id", opEq, setOne(&f.ID)},
		pushRule{"tenant_id", opEq, setOne(&f.TenantID)},
		pushRule{"name", opEq, setOne(&f.Name)})
	if len(rest) > 0 && !byIDs(f.ID, nil) {
		return f, nil, unsupportedConds("service_account", rest, "id (_eq), tenant_id (_eq) and name (_eq)")
	}
	return f, rest, nil
}

func membershipField(m *latchkey.Membership, field string) string {
	switch field {
	case "id":
		return m.ID
	case "tenant_id":
		return m.TenantID
	case "user_id":
		return m.UserID
	case "role":
		return string(m.Role)
	}
	return ""
}

// membershipFilter builds a MembershipFilter from where, and returns the
// conditions left to check in memory.
func membershipFilter(where *MembershipBoolExp) (latchkey.MembershipFilter, []cond, error) {
	var f latchkey.MembershipFilter
	cs, err := whereConds("membership_bool_exp", where, func(w *MembershipBoolExp) []cond {
		return slices.Concat(uuidConds("id", w.ID), uuidConds("tenant_id", w.TenantID),
			uuidConds("user_id", w.UserID), stringConds("role", w.Role))
	})
	if err != nil {
		return f, nil, err
	}
	rest := pushDown(cs,
		pushRule{"id", opEq, setOne(&f.ID)},
		pushRule{"tenant_id", opEq, setOne(&f.TenantID)},
		pushRule{"user_id", opEq, setOne(&f.UserID)},
		pushRule{"role", opEq, setOne(&f.Role)})
	if len(rest) > 0 && !byIDs(f.ID, nil) {
		return f, nil, unsupportedConds("membership", rest, "id (_eq), tenant_id (_eq), user_id (_eq) and role (_eq)")
	}
	return f, rest, nil
}

// appendSort appends field's sort order to orders when dir is set. Hasura's
// nulls_first/nulls_last variants sort like plain asc/desc.
func appendSort(orders []latchkey.SortOrder, field string, dir *OrderBy) []latchkey.SortOrder {
	if dir == nil {
		return orders
	}
	desc := *dir == OrderByDesc || *dir == OrderByDescNullsFirst || *dir == OrderByDescNullsLast
	return append(orders, latchkey.SortOrder{Field: field, Desc: desc})
}
