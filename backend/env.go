package backend

import "os"

var lookupEnv = os.LookupEnv
