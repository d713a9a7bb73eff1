package graphql

import (
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

func tenantConds(w *TenantBoolExp) ([]cond, error) {
	if w == nil {
		return nil, nil
	}
	if err := checkBoolExp("tenant_bool_exp", w.Or != nil, w.Not != nil); err != nil {
		return nil, err
	}
	var cs []cond
	for _, sub := range w.And {
		c, err := tenantConds(sub)
		if err != nil {
			return nil, err
		}
		cs = append(cs, c...)
	}
	cs = append(cs, uuidConds("id", w.ID)...)
	cs = append(cs, stringConds("slug", w.Slug)...)
	cs = append(cs, stringConds("name", w.Name)...)
	return cs, nil
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
	cs, err := tenantConds(where)
	if err != nil {
		return f, nil, err
	}
	var rest []cond
	for _, c := range cs {
		switch {
		case c.field == "id" && c.op == opEq && f.ID == nil:
			f.ID = ptr(c.values[0])
		case c.field == "id" && c.op == opIn && f.IDs == nil:
			f.IDs = c.values
		case c.field == "slug" && c.op == opEq && f.Slug == nil:
			f.Slug = ptr(c.values[0])
		case c.field == "name" && c.op == opEq && f.Name == nil:
			f.Name = ptr(c.values[0])
		default:
			rest = append(rest, c)
		}
	}
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

func apiKeyConds(w *AuthAPIKeyBoolExp) ([]cond, error) {
	if w == nil {
		return nil, nil
	}
	if err := checkBoolExp("auth_api_key_bool_exp", w.Or != nil, w.Not != nil); err != nil {
		return nil, err
	}
	var cs []cond
	for _, sub := range w.And {
		c, err := apiKeyConds(sub)
		if err != nil {
			return nil, err
		}
		cs = append(cs, c...)
	}
	cs = append(cs, uuidConds("id", w.ID)...)
	cs = append(cs, stringConds("name", w.Name)...)
	cs = append(cs, uuidConds("user_id", w.UserID)...)
	cs = append(cs, uuidConds("default_tenant_id", w.DefaultTenantID)...)
	return cs, nil
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
	cs, err := apiKeyConds(where)
	if err != nil {
		return f, nil, err
	}
	var rest []cond
	for _, c := range cs {
		switch {
		case c.field == "id" && c.op == opEq && f.ID == nil:
			f.ID = ptr(c.values[0])
		case c.field == "id" && c.op == opIn && f.IDs == nil:
			f.IDs = c.values
		case c.field == "user_id" && c.op == opEq && f.UserID == nil:
			f.UserID = ptr(c.values[0])
		case c.field == "default_tenant_id" && c.op == opEq && f.TenantID == nil:
			f.TenantID = ptr(c.values[0])
		case c.field == "name" && c.op == opEq && f.Name == nil:
			f.Name = ptr(c.values[0])
		default:
			rest = append(rest, c)
		}
	}
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

func serviceAccountConds(w *ServiceAccountBoolExp) ([]cond, error) {
	if w == nil {
		return nil, nil
	}
	if err := checkBoolExp("service_account_bool_exp", w.Or != nil, w.Not != nil); err != nil {
		return nil, err
	}
	var cs []cond
	for _, sub := range w.And {
		c, err := serviceAccountConds(sub)
		if err != nil {
			return nil, err
		}
		cs = append(cs, c...)
	}
	cs = append(cs, uuidConds("id", w.ID)...)
	cs = append(cs, uuidConds("tenant_id", w.TenantID)...)
	cs = append(cs, stringConds("name", w.Name)...)
	return cs, nil
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
	cs, err := serviceAccountConds(where)
	if err != nil {
		return f, nil, err
	}
	var rest []cond
	for _, c := range cs {
		switch {
		case c.field == "id" && c.op == opEq && f.ID == nil:
			f.ID = ptr(c.values[0])
		case c.field == "tenant_id" && c.op == opEq && f.TenantID == nil:
			f.TenantID = ptr(c.values[0])
		case c.field == "name" && c.op == opEq && f.Name == nil:
			f.Name = ptr(c.values[0])
		default:
			rest = append(rest, c)
		}
	}
	if len(rest) > 0 && !byIDs(f.ID, nil) {
		return f, nil, unsupportedConds("service_account", rest, "id (_eq), tenant_id (_eq) and name (_eq)")
	}
	return f, rest, nil
}

func membershipConds(w *MembershipBoolExp) ([]cond, error) {
	if w == nil {
		return nil, nil
	}
	if err := checkBoolExp("membership_bool_exp", w.Or != nil, w.Not != nil); err != nil {
		return nil, err
	}
	var cs []cond
	for _, sub := range w.And {
		c, err := membershipConds(sub)
		if err != nil {
			return nil, err
		}
		cs = append(cs, c...)
	}
	cs = append(cs, uuidConds("id", w.ID)...)
	cs = append(cs, uuidConds("tenant_id", w.TenantID)...)
	cs = append(cs, uuidConds("user_id", w.UserID)...)
	cs = append(cs, stringConds("role", w.Role)...)
	return cs, nil
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
	cs, err := membershipConds(where)
	if err != nil {
		return f, nil, err
	}
	var rest []cond
	for _, c := range cs {
		switch {
		case c.field == "id" && c.op == opEq && f.ID == nil:
			f.ID = ptr(c.values[0])
		case c.field == "tenant_id" && c.op == opEq && f.TenantID == nil:
			f.TenantID = ptr(c.values[0])
		case c.field == "user_id" && c.op == opEq && f.UserID == nil:
			f.UserID = ptr(c.values[0])
		case c.field == "role" && c.op == opEq && f.Role == nil:
			f.Role = ptr(latchkey.Role(c.values[0]))
		default:
			rest = append(rest, c)
		}
	}
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
