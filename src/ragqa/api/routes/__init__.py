"""One router per resource; each route checks the caller, then hands the work to the facade in a lane."""
