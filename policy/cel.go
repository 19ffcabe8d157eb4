package policy

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/cel-go/cel"

	"github.com/trustgate/trustgate/internal/safetext"
)

// CEL rules see these variables (documented in the README):
//
//	component  map: name, kind, role, digest (strings); packages (list of
//	           maps: purl, type, name, version); signers (list of names);
//	           provider (string) and fallbacks (list of names), for a model
//	sbom       map: the CycloneDX document as JSON, or an empty map
//	statement  map: the SBOM attestation's in-toto statement, or an empty map
//	now        timestamp: the evaluation time
const (
	maxExpressionLength = 4096
	// celCostLimit bounds one evaluation, so that no rule (a nested
	// comprehension over a large SBOM, say) can run without end; celTimeout
	// bounds it in time as well. Either limit denies.
	celCostLimit = 1_000_000
	celTimeout   = time.Second
)

var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("component", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("sbom", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("statement", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("now", cel.TimestampType),
	)
})

// compileCEL compiles a rule once; it must type-check to a bool.
func compileCEL(expr string) (cel.Program, error) {
	if expr == "" {
		return nil, errors.New("empty")
	}
	if len(expr) > maxExpressionLength {
		return nil, fmt.Errorf("longer than %d characters", maxExpressionLength)
	}
	env, err := celEnv()
	if err != nil {
		return nil, err
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, fmt.Errorf("does not compile: %s", safetext.Line(iss.Err().Error()))
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, fmt.Errorf("returns %s, not bool", ast.OutputType())
	}
	return env.Program(ast, cel.CostLimit(celCostLimit), cel.InterruptCheckFrequency(100))
}
