// text module
