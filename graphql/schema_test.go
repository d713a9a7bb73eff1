package graphql_test

import (
	"slices"
	"strings"
	"testing"
)

type introspectedType struct {
	Name   string
	Kind   string
	Fields []struct {
		Name string
		Type struct {
			Kind   string
			Name   *string
			OfType *struct {
				Kind   string
				Name   *string
				OfType *struct{ Name *string }
			}
		}
	}
	InputFields []struct{ Name string }
}

// TestSchema_APIKeyHasNoKeyMaterial introspects auth_api_key: no field may
// return the key text or its hash.
func TestSchema_APIKeyHasNoKeyMaterial(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	var data struct {
		Type introspectedType `json:"__type"`
	}
	e.QueryAs(t, goodKey, nil, `{ __type(name: "auth_api_key") { name kind fields { name type { kind name ofType { kind name ofType { name } } } } } }`, nil).MustData(t, &data)
	var names []string
	for _, f := range data.Type.Fields {
		names = append(names, f.Name)
	}
	slices.Sort(names)
	// identifier is the non-secret prefix and last four characters
	// (latchkey.SecretIdentifier), never more of the key.
	want := []string{"created_at", "created_by_user_id", "default_tenant_id", "expires_at", "id", "identifier", "last_used_at", "name", "user_id"}
	if !slices.Equal(names, want) {
		t.Errorf("auth_api_key fields = %v, want %v", names, want)
	}
	for _, n := range names {
		for _, bad := range []string{"key", "token", "hash", "secret", "prefix"} {
			if strings.Contains(n, bad) && n != "api_key" {
				t.Errorf("auth_api_key.%s looks like key material", n)
			}
		}
	}
}

// TestSchema_SecretsOnlyInCreationPayloads checks, over every object type,
// that fields (of non-root types) named like secrets exist only in the show-once results of
// create_api_key, rotate_api_key, create_api_token, switch_tenant and refresh_token.
func TestSchema_SecretsOnlyInCreationPayloads(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	var data struct {
		Schema struct {
			Types []introspectedType
		} `json:"__schema"`
	}
	e.QueryAs(t, goodKey, nil, `{ __schema { types { name kind fields { name } } } }`, nil).MustData(t, &data)
	allowed := map[string]bool{
		"create_api_key_payload.key":   true,
		"create_api_key_payload.token": true,
		"rotate_api_key_payload.key":   true,
		"rotate_api_key_payload.token": true,
		// Not secrets: which key was rolled, and when it stops working.
		"rotate_api_key_payload.old_key_id":         true,
		"rotate_api_key_payload.old_key_expires_at": true,
		"create_api_token_payload.token":            true,
		"access_token_payload.access_token":         true,
		"access_token_payload.refresh_token":        true,
		"Mutation.refresh_token":                    true,
		"auth_info.api_token_scope":                 true,
		"Query.api_token":                           true,
		"service_account.api_keys":                  true,
		"Mutation.create_api_token":                 true,
		"Mutation.delete_api_token":                 true,
	}
	seen := 0
	for _, typ := range data.Schema.Types {
		// Root fields are checked through the types they return.
		if typ.Kind != "OBJECT" || strings.HasPrefix(typ.Name, "__") || typ.Name == "Query" || typ.Name == "Mutation" {
			continue
		}
		seen++
		for _, f := range typ.Fields {
			name := typ.Name + "." + f.Name
			if allowed[name] {
				continue
			}
			for _, bad := range []string{"key", "token", "hash", "secret", "password"} {
				if strings.Contains(f.Name, bad) {
					t.Errorf("%s looks like a secret", name)
				}
			}
		}
	}
	if seen < 10 {
		t.Errorf("saw only %d object types", seen)
	}
}

// TestSchema_Names pins the type and input names the Prefect client sends.
func TestSchema_Names(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	var data struct {
		Schema struct {
			Types []introspectedType
		} `json:"__schema"`
	}
	e.QueryAs(t, goodKey, nil, `{ __schema { types { name kind inputFields { name } } } }`, nil).MustData(t, &data)
	inputs := map[string][]string{}
	for _, typ := range data.Schema.Types {
		var fs []string
		for _, f := range typ.InputFields {
			fs = append(fs, f.Name)
		}
		inputs[typ.Name] = fs
	}
	for name, fields := range map[string][]string{
		"create_api_key_input":         {"name", "user_id", "expires_at"},
		"delete_api_key_input":         {"key_id"},
		"switch_tenant_input":          {"tenant_id"},
		"refresh_token_input":          {"access_token"},
		"create_api_token_input":       {"name", "scope"},
		"delete_api_token_input":       {"token_id"},
		"create_tenant_input":          {"name", "slug"},
		"uuid_comparison_exp":          {"_eq", "_neq", "_in"},
		"String_comparison_exp":        {"_eq", "_neq", "_in"},
		"tenant_bool_exp":              {"id", "slug", "_and"},
		"create_service_account_input": {"name", "role", "tenant_id"},
		"delete_service_account_input": {"service_account_id"},
		"create_membership_input":      {"tenant_id", "user_id", "email", "role"},
		"update_membership_role_input": {"membership_id", "role"},
		"delete_membership_input":      {"membership_id"},
	} {
		got, ok := inputs[name]
		if !ok {
			t.Errorf("input %s missing", name)
			continue
		}
		for _, f := range fields {
			if !slices.Contains(got, f) {
				t.Errorf("%s lacks %s (has %v)", name, f, got)
			}
		}
	}
	for _, name := range []string{"uuid", "timestamptz", "order_by", "auth_info", "tenant", "user", "membership", "service_account", "auth_api_key", "api_token"} {
		if _, ok := inputs[name]; !ok {
			t.Errorf("type %s missing", name)
		}
	}
}

// introspectionQuery is graphql-js's getIntrospectionQuery(), as GraphiQL
// and code generators send it.
const introspectionQuery = `query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}`

func TestSchema_StandardIntrospection(t *testing.T) {
	t.Parallel()
	e := MustNewEnv(t)
	var data struct {
		Schema struct {
			QueryType    struct{ Name string }
			MutationType struct{ Name string }
			Types        []struct{ Name string }
		} `json:"__schema"`
	}
	e.QueryAs(t, goodKey, nil, introspectionQuery, nil).MustData(t, &data)
	if data.Schema.QueryType.Name != "Query" || data.Schema.MutationType.Name != "Mutation" || len(data.Schema.Types) < 20 {
		t.Errorf("schema = %+v", data.Schema)
	}
}
