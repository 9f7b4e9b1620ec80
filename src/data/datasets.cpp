#include "kiln/data/datasets.h"
// placeholder; being implemented
