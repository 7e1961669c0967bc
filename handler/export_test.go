package handler

// PushCost is pushCost, for the budget test to size its budget exactly.
var PushCost = pushCost
