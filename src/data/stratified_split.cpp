#include "kiln/data/stratified_split.h"
// placeholder; being implemented
