"""School structure: years, terms, levels, subjects, classes, rooms, people, enrolments, timetables."""
