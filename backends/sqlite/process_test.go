package sqlite_test

const helperEnv = "DOCKET_SQLITE_HELPER"
