"""Typical remote-sensing captions, used to weight the text index (see ``caption_energy``).

They cover the land-use classes of RSICD and UCM in the phrasing analysts use; only their
average squared embedding matters, so the exact wording is not critical.
"""

REFERENCE_CAPTIONS = (
    "many planes are parked next to a long building in an airport .",
    "a baseball field is next to a parking lot with many cars .",
    "there are two tennis courts surrounded by green trees .",
    "some white storage tanks are near a factory .",
    "a river with a bridge passes through a dense residential area .",
    "many ships are docked in a harbor near buildings .",
    "a large stadium with a green playground is surrounded by roads .",
    "a church with a cross shaped roof is near several buildings .",
    "a golf course with green lawns and some sand pits .",
    "a piece of farmland divided into many rectangular fields .",
    "the beach is next to the blue sea and some green trees .",
    "a freeway with several lanes and some cars passes through the forest .",
    "some mobile homes are arranged in rows in a park .",
    "a large parking lot with many cars is next to a road .",
    "an overpass crosses a road with many cars .",
    "a runway with white marks is in the airport .",
    "sparse houses with swimming pools are surrounded by trees .",
    "a dense forest with dark green trees .",
    "a bare land with some yellow soil and a few plants .",
    "a desert with some dunes and no vegetation .",
    "a railway station with several tracks next to buildings .",
    "a pond surrounded by green meadow and trees .",
    "a school with a playground and some buildings .",
    "an industrial area with many factories and warehouses .",
    "a commercial area with tall buildings and roads .",
    "a square with a fountain in the center of the city .",
    "a port with many containers and cranes .",
    "some mountains covered with green vegetation .",
    "an intersection of two roads with some cars .",
    "a viaduct crosses over the river and the road .",
    "a park with green trees, lawns and a lake .",
    "several swimming pools are next to houses .",
)
