// train module
