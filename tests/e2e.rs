// end-to-end tests: written next
