package mor

// routedRecursion runs the routed recursion of a model with a router.
//
// TODO: the routed recursion (expert-choice and token-choice routing with
// their KV strategies) replaces this function; until then routed models panic.
func routedRecursion(in RecursionInput) RecursionOutput {
	panic("mor: routed recursion not built yet: models with a router (config.router) cannot run until mor/routed.go implements routedRecursion")
}
